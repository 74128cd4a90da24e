"""``procs.spawn``: a child keeps its pid, dies with its parent, and starts whatever gRPC is
doing in the parent (grpcio's fork handlers once aborted one child in five, grpc/grpc#43055)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc import aio

from loadtest.stack.procs import spawn
from tests.integration.loadtest.control_plane.plane_wait import alive
from tests.integration.loop.loop_stack import eventually

needs_setpriv = pytest.mark.skipif(shutil.which("setpriv") is None, reason="no setpriv here")


@needs_setpriv
def test_a_spawned_child_keeps_its_pid_and_dies_with_its_parent() -> None:
    script = (
        "import sys, subprocess\n"
        "from loadtest.stack.procs import spawn\n"
        "child = spawn(['sleep', '60'], subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.readline()\n"  # lives until the test closes its stdin
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None and parent.stdin is not None
    pid = int(parent.stdout.readline())
    comm = Path(f"/proc/{pid}/comm")
    eventually(lambda: comm.read_text().strip() == "sleep", "the child became sleep")
    parent.stdin.close()
    assert parent.wait(20) == 0
    eventually(lambda: not alive(pid), "the child died with its parent")


async def _busy_grpc(stop: asyncio.Event) -> int:
    """Calls against a server that answers every one UNIMPLEMENTED, until ``stop``."""
    server = aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    calls = 0
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.unary_unary("/nothing/Here")
        while not stop.is_set():
            with pytest.raises(grpc.RpcError):
                await method(b"x", timeout=1.0)
            calls += 1
    await server.stop(0)
    return calls


async def test_children_start_while_grpc_is_busy_in_the_parent() -> None:
    stop = asyncio.Event()
    busy = asyncio.create_task(_busy_grpc(stop))
    codes = []
    try:
        for _ in range(100):
            child = await asyncio.to_thread(spawn, ["true"], subprocess.DEVNULL)
            codes.append(await asyncio.to_thread(child.wait))
    finally:
        stop.set()
        calls = await busy
    assert calls > 0  # gRPC was at work while the children started
    assert codes == [0] * 100, f"{sum(c != 0 for c in codes)} children died: {set(codes)}"
