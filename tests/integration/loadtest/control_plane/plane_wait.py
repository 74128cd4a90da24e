"""Helpers of the control-plane tests: waiting for a condition on a bound, and pod cost shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from loadtest.control_plane.spec import Defaults
from loadtest.stack.simpod_args import SimPod

BOUND_S = 30.0  # upper bound to fail on while waiting for a state, never a measured time
SLOW = Defaults(SimPod(fixed_ms=20, per_row_ms=2, max_batch=16, startup_s=0.5), grace_s=5.0)


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds; fail after ``BOUND_S``."""
    end = time.monotonic() + BOUND_S
    while time.monotonic() < end:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {BOUND_S} s: {what}")


def alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (and is not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
