"""Shared by the gateway's real-process tests: two simulated pods (test_stalled_pod's POD)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from loadtest.stack.procs import PodProc, start_pod
from tests.integration.gateway.test_stalled_pod import POD


@pytest.fixture
async def two_pods() -> AsyncIterator[list[PodProc]]:
    """Two pods of 20 ms + 0.5 ms/row, started at once, stopped after the test."""
    pods = list(await asyncio.gather(*(asyncio.to_thread(start_pod, POD) for _ in range(2))))
    yield pods
    for pod in pods:
        await asyncio.to_thread(pod.stop)
