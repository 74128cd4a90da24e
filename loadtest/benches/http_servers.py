"""The gateway's HTTP/1.1 server against aiohttp's low-level ``web.Server``, same trivial v2
handler, same load: what the REST server itself costs.

    python -m loadtest.benches.http_servers [--duration S] [--rate R] [--rounds N]

starts both servers as child processes on 127.0.0.1 (uvloop, as the gateway runs) and runs
``loadtest ab`` between them (A: aiohttp, B: this server): CPU-µs per request of each server
process and the latency percentiles. The handler answers every ``POST
/v2/models/{model}/infer`` with one fixed JSON body after reading the request's; nothing else
runs in the server processes. ``python -m loadtest.benches.http_servers serve KIND PORT``
runs one of them in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator

import uvloop

from loadtest.stack.procs import HOST, Proc, free_port, wait_http

__all__ = ["KINDS", "main", "serve"]

KINDS = ("lean", "aiohttp")
ANSWER = (
    b'{"model_name":"sim","outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[1,16],'
    b'"data":[0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0]}]}'
)
_HEALTH = "/v2/health/live"


async def _serve_lean(port: int) -> None:
    from gateway.frontends.http_server import HttpServer, Request, Response, Router

    async def infer(request: Request) -> Response:
        return Response(200, ANSWER, "application/json")

    async def live(_: Request) -> Response:
        return Response(200)

    router = Router()
    router.add("POST", "/v2/models/{model}/infer", infer)
    router.add("GET", _HEALTH, live)
    await HttpServer(router, lambda _r, _e: None).start(HOST, port)
    await asyncio.Event().wait()


async def _serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        await request.read()
        if request.path.endswith("/infer") and request.method == "POST":
            return web.Response(body=ANSWER, content_type="application/json")
        return web.Response(status=200 if request.path == _HEALTH else 404)

    runner = web.ServerRunner(web.Server(handler), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    await asyncio.Event().wait()


def serve(kind: str, port: int) -> None:
    """Run one server on 127.0.0.1:``port`` until killed."""
    uvloop.run(_serve_lean(port) if kind == "lean" else _serve_aiohttp(port))


@contextlib.contextmanager
def _started(kind: str) -> Iterator[tuple[Proc, str]]:
    port = free_port()
    cmd = [sys.executable, "-m", "loadtest.benches.http_servers", "serve", kind, str(port)]
    proc = Proc(kind, subprocess.Popen(cmd))
    try:
        url = f"http://{HOST}:{port}"
        wait_http(url + _HEALTH, proc=proc.popen)
        yield proc, url
    finally:
        proc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.benches.http_servers")
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("serve", help="run one server in the foreground")
    one.add_argument("kind", choices=KINDS)
    one.add_argument("port", type=int)
    parser.add_argument("--duration", type=float, default=10.0, help="s measured per round")
    parser.add_argument("--rate", type=float, default=1500.0, help="req/s, open loop")
    parser.add_argument("--rounds", type=int, default=2, help="A/B alternations")
    parser.add_argument("--json", default="reports/bench-http-servers.json")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.kind, args.port)
        return 0
    with _started("aiohttp") as (a, a_url), _started("lean") as (b, b_url):
        ab = [sys.executable, "-m", "loadtest.cli", "ab", "--a", a_url, "--b", b_url]
        ab += ["--a-pids", f"aiohttp={a.pid}", "--b-pids", f"lean={b.pid}"]
        ab += ["--rate", str(args.rate), "--duration", str(args.duration)]
        ab += ["--rounds", str(args.rounds), "--verify-every", "0", "--json", args.json]
        return subprocess.call(ab)


if __name__ == "__main__":
    sys.exit(main())
