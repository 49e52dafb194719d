#!/usr/bin/python3
"""A CRL distribution point for the tests: serves the files of DIR on 127.0.0.1.

Usage: crl_server.py DIR PORT_FILE
GET /NAME answers DIR/NAME (404 when absent). While DIR/NAME.hang exists, it answers after
30 seconds instead (a server that hangs; the daemon's fetch timeout ends the wait first).
Each request is logged to stderr.
"""
import http.server
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        name = os.path.basename(self.path)
        path = os.path.join(sys.argv[1], name)
        if os.path.exists(path + ".hang"):
            sys.stderr.write("hanging on GET /%s\n" % name)
            sys.stderr.flush()
            time.sleep(30)
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    server.serve_forever()


if __name__ == "__main__":
    main()
