#!/usr/bin/python3
"""A gRPC server and client for the edge's tests (Debian's python3-grpcio), no protobuf needed.

Service edge.Echo, raw bytes both ways (no serializers):
  Say      unary: answers b"echo:" + the request
  Tick     server streaming: the request is a count N (ASCII); N messages "tick I", 100 ms apart
  Forever  server streaming: "tick I" every 100 ms until the call ends

  grpc_echo.py server --port-file F
      h2c (gRPC's insecure port) on 127.0.0.1:0; the port goes to F once it listens; runs until
      killed.
  grpc_echo.py client --target HOST:PORT (--ca CA.pem [--cert C --key K] [--authority NAME] |
                      --insecure) --call say|tick|forever [--arg TEXT] [--timeout S]
      One call; prints each answer on a line (flushed as it comes) and exits 0; on an RPC error
      prints "ended: CODE details" and exits 1.
"""
import argparse
import os
import sys
import time
from concurrent import futures

import grpc

SERVICE = "edge.Echo"


def say(request, context):
    return b"echo:" + request


def tick(request, context):
    for i in range(int(request.decode() or "1")):
        if i:
            time.sleep(0.1)
        yield ("tick %d" % i).encode()


def forever(request, context):
    i = 0
    while context.is_active():
        yield ("tick %d" % i).encode()
        i += 1
        time.sleep(0.1)


def serve(args):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Tick": grpc.unary_stream_rpc_method_handler(tick),
        "Forever": grpc.unary_stream_rpc_method_handler(forever),
    })
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    server.wait_for_termination()


def channel(args):
    if args.insecure:
        return grpc.insecure_channel(args.target)
    with open(args.ca, "rb") as f:
        root = f.read()
    key = chain = None
    if args.cert:
        with open(args.key or args.cert, "rb") as f:
            key = f.read()
        with open(args.cert, "rb") as f:
            chain = f.read()
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key,
                                         certificate_chain=chain)
    opts = []
    if args.authority:
        opts = [("grpc.ssl_target_name_override", args.authority),
                ("grpc.default_authority", args.authority)]
    return grpc.secure_channel(args.target, creds, options=opts)


def call(args):
    ch = channel(args)
    method = "/%s/%s" % (SERVICE, {"say": "Say", "tick": "Tick", "forever": "Forever"}[args.call])
    try:
        if args.call == "say":
            reply = ch.unary_unary(method)(args.arg.encode(), timeout=args.timeout)
            print(reply.decode(), flush=True)
        else:
            stream = ch.unary_stream(method)(args.arg.encode(), timeout=args.timeout)
            for reply in stream:
                print(reply.decode(), flush=True)
    except grpc.RpcError as e:
        print("ended: %s %s" % (e.code().name, e.details()), flush=True)
        return 1
    finally:
        ch.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port-file", required=True)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--ca")
    c.add_argument("--cert")
    c.add_argument("--key")
    c.add_argument("--authority")
    c.add_argument("--insecure", action="store_true")
    c.add_argument("--call", choices=("say", "tick", "forever"), required=True)
    c.add_argument("--arg", default="")
    c.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()
    if args.mode == "server":
        serve(args)
        return 0
    if not args.insecure and not args.ca:
        p.error("client: --ca CA.pem, or --insecure")
    return call(args)


if __name__ == "__main__":
    sys.exit(main())
