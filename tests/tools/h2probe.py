#!/usr/bin/python3
"""An HTTP/2 client for the edge's tests (Debian's python3-h2), for what curl and nghttp do not
send: exact requests, client trailers, and the floods a server must stop.

  h2probe.py --port P --sni HOST --ca CA [--cert C --key K] COMMAND [args]

Commands (each on one TLS connection with ALPN h2; prints lines the tests match):
  get PATH [--authority A] [--method M] [--header k:v]... [--body-bytes N] [--chunks K]
      [--trailer k:v]... [--repeat N]
      One request per repeat, one after another on the connection; prints per response
      "status S", "header k: v" per field, "trailer k: v", "body BYTES SHA256HEX", or
      "reset CODE", and "text LINE" per line of a small printable body. --body-bytes sends N bytes (the /bytes pattern) in K DATA frames without
      content-length (so the edge must frame it), or with it when --length is given.
  streams N PATH   N requests at once; prints "ok K", "refused R" (REFUSED_STREAM), "other O"
  rapid-reset N    N streams each opened and cancelled at once (CVE-2023-44487)
  continuation N   one HEADERS without END_HEADERS, then N CONTINUATION frames of 1 KiB
  ping N           N PINGs in one write
  settings N       N empty SETTINGS in one write
  empty-data N     one POST stream, then N empty DATA frames
  idle             nothing: waits for the edge to end the connection
  The flood commands print "goaway CODE" (the edge's GOAWAY error code) or "no goaway", and
  "answered K" for requests answered before it.
"""
import argparse
import hashlib
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, PingFrame, SettingsFrame


def hpack_int(v, prefix):
    """An HPACK integer (RFC 7541 5.1) with an N-bit prefix, the prefix's other bits 0."""
    top = (1 << prefix) - 1
    if v < top:
        return bytes([v])
    out, v = [top], v - top
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    return bytes(out + [v])


def pattern(n):
    """edge-upstream's /bytes/N body: byte i is (i * 131 + 7) & 0xff, a period of 256."""
    p = bytes(((i * 131 + 7) & 0xFF) for i in range(256))
    return (p * (n // 256 + 1))[:n]


class Probe:
    def __init__(self, a):
        ctx = ssl.create_default_context(cafile=a.ca)
        if a.cert:
            ctx.load_cert_chain(a.cert, a.key)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=a.sni)
        if self.sock.selected_alpn_protocol() != "h2":
            sys.exit("alpn: %r" % self.sock.selected_alpn_protocol())
        self.authority = a.sni
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.send_failed = False
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        self.conn.increment_flow_control_window((1 << 24))
        self.flush()
        self.goaway = None
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.send_failed:
            try:
                self.sock.sendall(data)
            except (OSError, ssl.SSLError):
                self.send_failed = True  # the server stopped reading: its GOAWAY may follow

    def raw(self, frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def events(self):
        """Reads once; returns the events (empty at the end of the connection)."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            data = b""
        if not data:
            self.closed = True
            return []
        try:
            evs = self.conn.receive_data(data)
        except Exception as e:  # our own state machine may not follow raw frames: enough
            evs = [("error", str(e))]
        for e in evs:
            if isinstance(e, h2.events.ConnectionTerminated):
                self.goaway = int(e.error_code)
            if isinstance(e, h2.events.DataReceived):
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        self.flush()
        return evs

    def headers(self, path, method="GET", authority=None, extra=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", "https"),
              (":authority", authority or self.authority), (":path", path)]
        hs += list(extra)
        self.conn.send_headers(sid, hs, end_stream=end)
        return sid


def cmd_get(p, a):
    for _ in range(a.repeat):
        extra = [tuple(h.split(":", 1)) for h in a.header]
        body = pattern(a.body_bytes) if a.body_bytes is not None else None
        if body is not None and a.length:
            extra.append(("content-length", str(len(body))))
        sid = p.headers(a.path, a.method, a.authority, extra, end=body is None)
        early = []  # events read while the body goes out (the answer may come first)
        if body is not None:
            k = max(1, a.chunks)
            step = max(1, (len(body) + k - 1) // k)
            chunks = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
            for i, c in enumerate(chunks):
                last = i == len(chunks) - 1 and not a.trailer
                while not p.closed and p.conn.local_flow_control_window(sid) < len(c):
                    p.flush()
                    evs = p.events()
                    early += evs
                    if any(getattr(e, "stream_id", None) == sid and
                           isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                           for e in evs):
                        break
                if p.conn.local_flow_control_window(sid) < len(c):
                    break  # answered (or reset) before the body was all out
                p.conn.send_data(sid, c, end_stream=last)
                p.flush()
            if a.trailer:
                p.conn.send_headers(sid, [tuple(t.split(":", 1)) for t in a.trailer],
                                    end_stream=True)
        p.flush()
        got, done = bytearray(), False
        while not done and (early or not p.closed):
            evs, early = (early, []) if early else (p.events(), [])
            for e in evs:
                if getattr(e, "stream_id", None) != sid:
                    continue
                if isinstance(e, h2.events.ResponseReceived):
                    for k, v in e.headers:
                        k, v = k.decode(), v.decode()
                        print("status " + v if k == ":status" else "header %s: %s" % (k, v))
                elif isinstance(e, h2.events.TrailersReceived):
                    for k, v in e.headers:
                        print("trailer %s: %s" % (k.decode(), v.decode()))
                elif isinstance(e, h2.events.DataReceived):
                    got += e.data
                elif isinstance(e, h2.events.StreamEnded):
                    print("body %d %s" % (len(got), hashlib.sha256(got).hexdigest()))
                    if len(got) <= 4096 and all(32 <= b < 127 or b in (9, 10, 13) for b in got):
                        for line in got.decode().splitlines():
                            print("text " + line)
                    done = True
                elif isinstance(e, h2.events.StreamReset):
                    print("reset %d" % int(e.error_code))
                    done = True
        if not done:
            print("closed goaway=%s" % p.goaway)
            return 1
        sys.stdout.flush()
    return 0


def cmd_streams(p, a):
    ids = [p.headers(a.path) for _ in range(a.n)]
    p.flush()
    ok = refused = other = 0
    left = set(ids)
    while left and not p.closed:
        for e in p.events():
            sid = getattr(e, "stream_id", None)
            if sid not in left:
                continue
            if isinstance(e, h2.events.StreamEnded):
                ok += 1
                left.discard(sid)
            elif isinstance(e, h2.events.StreamReset):
                if int(e.error_code) == 7:
                    refused += 1
                else:
                    other += 1
                left.discard(sid)
    print("ok %d\nrefused %d\nother %d\nunanswered %d" % (ok, refused, other, len(left)))
    return 0


def drain(p, answered=0):
    while p.goaway is None and not p.closed:
        for e in p.events():
            if isinstance(e, h2.events.StreamEnded):
                answered += 1
    print("goaway %d" % p.goaway if p.goaway is not None else "no goaway")
    print("answered %d" % answered)
    return 0


def cmd_rapid_reset(p, a):
    for _ in range(a.n):
        sid = p.headers("/")
        p.conn.reset_stream(sid, error_code=8)  # CANCEL
        if len(p.conn.data_to_send(0)) == 0:
            pass
        if sid % 64 == 1:
            try:
                p.flush()
            except OSError:
                break
    try:
        p.flush()
    except OSError:
        pass
    return drain(p)


def cmd_continuation(p, a):
    sid = p.conn.get_next_available_stream_id()
    # a literal header field (not indexed) whose value runs over every frame
    block = b"\x82\x87\x84\x41" + bytes([len(p.authority)]) + p.authority.encode()
    block += b"\x00\x01x" + hpack_int(60000, 7)  # name "x", a value of 60000 bytes to come
    frames = [HeadersFrame(sid, data=block)]
    for _ in range(a.n):
        frames.append(ContinuationFrame(sid, data=b"y" * 1024))
    try:
        p.raw(frames)
    except OSError:
        pass
    return drain(p)


def cmd_ping(p, a):
    try:
        p.raw([PingFrame(0, opaque_data=b"%08d" % i) for i in range(a.n)])
    except OSError:
        pass
    return drain(p)


def cmd_settings(p, a):
    try:
        p.raw([SettingsFrame(0) for _ in range(a.n)])
    except OSError:
        pass
    return drain(p)


def cmd_idle(p, a):
    return drain(p)


def cmd_empty_data(p, a):
    sid = p.headers("/count", "POST", end=False)
    p.flush()
    try:
        p.raw([DataFrame(sid, data=b"") for _ in range(a.n)])
    except OSError:
        pass
    return drain(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sni", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--timeout", type=float, default=20)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("get")
    g.add_argument("path")
    g.add_argument("--authority")
    g.add_argument("--method", default="GET")
    g.add_argument("--header", action="append", default=[])
    g.add_argument("--body-bytes", type=int)
    g.add_argument("--chunks", type=int, default=1)
    g.add_argument("--length", action="store_true")
    g.add_argument("--trailer", action="append", default=[])
    g.add_argument("--repeat", type=int, default=1)
    s = sub.add_parser("streams")
    s.add_argument("n", type=int)
    s.add_argument("path")
    for name in ("rapid-reset", "continuation", "ping", "settings", "empty-data"):
        sub.add_parser(name).add_argument("n", type=int)
    sub.add_parser("idle")
    a = ap.parse_args()
    p = Probe(a)
    fn = {"get": cmd_get, "streams": cmd_streams, "rapid-reset": cmd_rapid_reset,
          "continuation": cmd_continuation, "ping": cmd_ping, "settings": cmd_settings,
          "empty-data": cmd_empty_data, "idle": cmd_idle}[a.cmd]
    sys.exit(fn(p, a))


if __name__ == "__main__":
    main()
