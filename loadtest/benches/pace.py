"""What work costs when it comes alone: the platform's floor under the gateway's low-load CPU.

Two measurements, each back to back and paced (one unit, then a sleep, as requests come at low
load). A fixed piece of pure Python (JSON round trips, no I/O): the CPU of the calling thread
inside the calls only (``time.thread_time``), so neither the sleeps nor other threads count.
A bare grpc.aio server answering fixed bytes to a grpc.aio client at concurrency 1: the server
process's CPU and context switches (all its threads) per call, less what it spends idle over a
window as long as the calls took. Neither touches the gateway: they show what this machine
charges any Python process, and grpc.aio, for work that arrives after a gap.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from loadtest.stack.procs import HOST, cpu_seconds, free_port, spawn

__all__ = ["PaceFigure", "grpc_call", "python_work", "serve"]

_SERVICE, _METHOD = "pace.Bare", "Echo"
_START_TIMEOUT_S = 30.0
_REPLY = b"x" * 64
_DOC = {
    "inputs": [
        {"name": f"in{i}", "datatype": "FP32", "shape": [1, 16], "data": list(range(16))}
        for i in range(4)
    ]
}


@dataclass(frozen=True, slots=True)
class PaceFigure:
    """One measurement: CPU-µs (and context switches, where counted) per call at a pace;
    ``idle_cpu_us``: what the server spent idle over as long, per call, already taken off."""

    what: str
    pace_ms: float
    calls: int
    cpu_us: float
    switches: float | None = None
    idle_cpu_us: float | None = None


def _unit() -> None:
    """The fixed piece of work: two JSON round trips of a small v2 request body."""
    for _ in range(2):
        json.loads(json.dumps(_DOC))


def python_work(pace_s: float, calls: int) -> PaceFigure:
    """CPU per call of ``_unit`` in this thread, with ``pace_s`` of sleep between calls."""
    for _ in range(50):
        _unit()
    used = 0.0
    for _ in range(calls):
        before = time.thread_time()
        _unit()
        used += time.thread_time() - before
        if pace_s:
            time.sleep(pace_s)
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
    await server.wait_for_termination()


async def _calls(port: int, pid: int, pace_s: float, calls: int) -> PaceFigure:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/{_SERVICE}/{_METHOD}")
        for _ in range(200):
            await call(b"y" * 64, timeout=10)
        cpu, switches, began = cpu_seconds(pid), _switches(pid), time.monotonic()
        for _ in range(calls):
            await call(b"y" * 64, timeout=10)
            if pace_s:
                await asyncio.sleep(pace_s)
        used, switched = cpu_seconds(pid) - cpu, _switches(pid) - switches
        idle_cpu, idle_switches = cpu_seconds(pid), _switches(pid)
        await asyncio.sleep(time.monotonic() - began)  # as long again, with no calls
        idle, idle_switched = cpu_seconds(pid) - idle_cpu, _switches(pid) - idle_switches
    return PaceFigure(
        "grpc.aio call",
        pace_s * 1e3,
        calls,
        1e6 * (used - idle) / calls,
        (switched - idle_switched) / calls,
        1e6 * idle / calls,
    )


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the bare grpc.aio server exited ({server.returncode})")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the bare grpc.aio server did not listen within {_START_TIMEOUT_S:g} s")


def grpc_call(pace_s: float, calls: int) -> PaceFigure:
    """A bare grpc.aio server's CPU and switches per call, called at ``pace_s`` (its own
    process, which dies with this one; the client in this one)."""
    port = free_port()
    code = f"import uvloop; from loadtest.benches.pace import serve; uvloop.run(serve({port}))"
    server = spawn([sys.executable, "-c", code], subprocess.DEVNULL)
    try:
        _wait_listening(port, server)
        return asyncio.run(_calls(port, server.pid, pace_s, calls))
    finally:
        server.kill()
        server.wait()
