"""What work costs when it comes alone: the platform's floor under the gateway's low-load CPU.

Two measurements, each back to back and paced (one unit, then a sleep, as requests come at low
load): a fixed piece of pure Python (JSON round trips, no I/O), its CPU per call in this
process; and a bare grpc.aio server answering fixed bytes to a grpc.aio client at concurrency
1, the server process's CPU and context switches (all its threads) per call. Neither touches
the gateway: they show what this machine charges any Python process, and grpc.aio, for being
woken once per request instead of finding work waiting.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from loadtest.stack.procs import cpu_seconds, free_port

__all__ = ["PaceFigure", "grpc_call", "python_work", "serve"]

_SERVICE, _METHOD = "pace.Bare", "Echo"
_REPLY = b"x" * 64
_DOC = {
    "inputs": [
        {"name": f"in{i}", "datatype": "FP32", "shape": [1, 16], "data": list(range(16))}
        for i in range(4)
    ]
}


@dataclass(frozen=True, slots=True)
class PaceFigure:
    """One measurement: CPU-µs (and context switches, where counted) per call at a pace."""

    what: str
    pace_ms: float
    calls: int
    cpu_us: float
    switches: float | None = None


def _unit() -> None:
    """The fixed piece of work: two JSON round trips of a small v2 request body."""
    for _ in range(2):
        json.loads(json.dumps(_DOC))


def python_work(pace_s: float, calls: int) -> PaceFigure:
    """CPU per call of ``_unit`` in this process, with ``pace_s`` of sleep between calls."""
    for _ in range(50):
        _unit()
    before = time.process_time()
    for _ in range(calls):
        _unit()
        if pace_s:
            time.sleep(pace_s)
    used = time.process_time() - before
    return PaceFigure("python work", pace_s * 1e3, calls, 1e6 * used / calls)


def _switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread of ``pid``."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        except OSError:  # the thread ended between the listing and the read
            continue
    return total


async def serve(port: int) -> None:
    """A bare grpc.aio server on 127.0.0.1:``port``: one raw-bytes method, a fixed reply."""
    import grpc

    async def echo(request: bytes, context: object) -> bytes:
        return _REPLY

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_SERVICE, {_METHOD: handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def _calls(port: int, pid: int, pace_s: float, calls: int) -> PaceFigure:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/{_SERVICE}/{_METHOD}")
        for _ in range(200):
            await call(b"y" * 64, timeout=10)
        cpu, switches = cpu_seconds(pid), _switches(pid)
        for _ in range(calls):
            await call(b"y" * 64, timeout=10)
            if pace_s:
                await asyncio.sleep(pace_s)
        used, switched = cpu_seconds(pid) - cpu, _switches(pid) - switches
    return PaceFigure("grpc.aio call", pace_s * 1e3, calls, 1e6 * used / calls, switched / calls)


def grpc_call(pace_s: float, calls: int) -> PaceFigure:
    """A bare grpc.aio server's CPU and switches per call, called at ``pace_s`` (its own
    process; the client in this one)."""
    port = free_port()
    code = f"import uvloop; from loadtest.benches.pace import serve; uvloop.run(serve({port}))"
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the bare grpc.aio server did not start (exit {server.poll()})")
        return asyncio.run(_calls(port, server.pid, pace_s, calls))
    finally:
        server.kill()
        server.wait()
