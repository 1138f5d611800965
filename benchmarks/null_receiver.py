"""A null OTLP receiver: the same HTTP server and gRPC setup as spanhouse's `otlp` receiver, but each
request is only parsed (`ExportTraceServiceRequest.FromString`) and answered; nothing is stored.

It is the transport-and-parse ceiling of a Python receiver on this machine.
Run: `python benchmarks/null_receiver.py --http-port 4318 --grpc-port 4317`.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanhouse.httpserver import HttpServer, Request, Response

_OK = ExportTraceServiceResponse().SerializeToString()


def handle_http(req: Request) -> Response:
    if req.path != "/v1/traces" or req.method != "POST":
        return Response(404, b"POST /v1/traces\n")
    ExportTraceServiceRequest.FromString(req.read_body(64 << 20))
    return Response(200, _OK, "application/x-protobuf")


def export(request: bytes, context: grpc.ServicerContext) -> bytes:
    ExportTraceServiceRequest.FromString(request)
    return _OK


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--http-port", type=int, default=4318)
    ap.add_argument("--grpc-port", type=int, default=4317)
    args = ap.parse_args()
    http = HttpServer(f"127.0.0.1:{args.http_port}", handle_http, "null receiver")
    http.start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)}),))
    server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    server.stop(1)
    http.shutdown()


if __name__ == "__main__":
    main()
