"""The generators measured against a pod of known behaviour, and a slowed generator caught.

The simulated pod runs each request as its own batch, one at a time, for exactly F ms, so what
a correct generator must see is known: closed loop at concurrency c, throughput 1000/F req/s
and latency c·F; open loop at a rate with room between arrivals, latency F and throughput the
rate. On a shared machine only what physics bounds is asserted (no measurement may beat the
pod's own limit or its service time, nor send more than it was asked); how close the figures
come is printed, never asserted. Also: every open-loop request is answered and checked over
each wire, processes merge, a dead server counts as errors.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import pytest

from loadtest.clients.base import ClientSpec, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.closed_loop import ClosedLoopConfig, run_closed_loop
from loadtest.generators.open_loop import (
    OpenLoopConfig,
    generator_client,
    run_open_loop,
    run_schedule,
)
from loadtest.stack.procs import PodProc, start_pod

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)

F_MS = 20.0


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod(["--fixed-ms", str(F_MS), "--per-row-ms", "0", "--max-batch", "32"])
    yield proc
    proc.stop()


def test_closed_loop_never_beats_the_pods_limit_or_its_queueing(pod: PodProc) -> None:
    concurrency = 4
    spec = ClientSpec("http-binary", pod.http_url, SimPayload(), verify_every=8)
    config = ClosedLoopConfig(concurrency=concurrency, duration_s=2.0, warmup_s=0.5, processes=0)
    result = run_closed_loop(spec, config)
    assert result.error_count == 0, result.error_sample
    limit = 1000 / F_MS  # req/s: one request at a time, F each
    expected_us = concurrency * F_MS * 1000  # each waits for the three ahead of it
    p50 = result.summary().p50_us
    print(
        f"closed loop: {result.throughput:.1f} req/s of {limit:.1f}; "
        f"p50 {p50} µs of {expected_us:.0f}"
    )
    assert 0 < result.throughput <= 1.05 * limit
    assert p50 >= 0.9 * expected_us, p50


@pytest.mark.parametrize("kind", ["http-binary", "grpc", "grpc-stream"])
def test_open_loop_sends_the_offered_rate_and_waits_the_service_time(
    kind: str, pod: PodProc
) -> None:
    rate = 10.0  # an arrival every 100 ms, each served in 20: nothing queues
    target = pod.grpc_address if is_grpc(kind) else pod.http_url
    spec = ClientSpec(kind, target, SimPayload(), verify_every=4, timeout_s=5.0)
    config = OpenLoopConfig(
        rate=rate, duration_s=3.0, warmup_s=0.5, processes=0, arrivals="constant", drain_s=5.0
    )
    result = run_open_loop(spec, config)
    assert result.error_count == 0, result.error_sample
    p50 = result.summary().p50_us
    print(f"{kind}: {result.throughput:.2f} req/s of {rate:g}; p50 {p50} µs of {F_MS * 1000:.0f}")
    assert result.ok == result.due == result.sent > 0  # every arrival of the schedule, answered
    assert result.throughput <= 1.1 * rate
    assert p50 >= F_MS * 1000, p50


class _Slowed:
    """A real client whose every send first blocks the event loop for ``block_s``."""

    def __init__(self, inner: object, block_s: float) -> None:
        self._inner = inner
        self._block_s = block_s

    @property
    def verified(self) -> int:
        return int(getattr(self._inner, "verified", 0))

    async def infer(self) -> None:
        time.sleep(self._block_s)  # the generator itself is slow, not the pod
        await self._inner.infer()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._inner.aclose()  # type: ignore[attr-defined]


async def test_an_artificially_slowed_generator_is_reported_invalid(pod: PodProc) -> None:
    # 200 req/s asked, but each send costs the generator 10 ms: it can send 100/s at most.
    spec = ClientSpec("http-binary", pod.http_url, SimPayload(), timeout_s=5.0)
    config = OpenLoopConfig(rate=200.0, duration_s=0.5, warmup_s=0.0, processes=0, drain_s=5.0)
    client = _Slowed(generator_client(spec), block_s=0.01)
    try:
        due = config.schedule(0)
        result = await run_schedule(client, config, due, time.monotonic() + 0.05, config.rate)
    finally:
        await client.aclose()
    assert not result.valid
    assert "lag" in result.invalid or "behind" in result.invalid, result.invalid
    assert result.lag().p99_us > config.lag_limit_us


@pytest.mark.parametrize("kind", ["http-binary", "grpc", "grpc-stream"])
def test_open_loop_requests_succeed_and_wait_at_least_the_service_time(
    kind: str, pod: PodProc
) -> None:
    target = pod.grpc_address if is_grpc(kind) else pod.http_url
    spec = ClientSpec(kind, target, SimPayload(rows=2), verify_every=4, timeout_s=5.0)
    config = OpenLoopConfig(rate=25.0, duration_s=1.0, warmup_s=0.2, processes=0, drain_s=5.0)
    result = run_open_loop(spec, config)
    assert result.error_count == 0, result.error_sample
    assert result.due > 0
    assert result.ok == result.due == result.sent
    assert result.verified > 0
    assert result.summary().count == result.ok
    assert result.summary().p50_us >= F_MS * 1000
    assert result.lag().count == result.due


def test_generator_processes_merge_their_results(pod: PodProc) -> None:
    spec = ClientSpec("http-json", pod.http_url, SimPayload(), verify_every=1, timeout_s=5.0)
    config = OpenLoopConfig(rate=30.0, duration_s=1.0, warmup_s=0.2, processes=2, drain_s=5.0)
    result = run_open_loop(spec, config)
    assert result.error_count == 0, result.error_sample
    assert result.processes == 2
    assert result.ok == result.due > 0
    assert result.verified >= result.ok  # verify_every=1: every answer (plus the warm-up's)
    assert result.summary().p50_us >= F_MS * 1000


def test_a_server_that_is_gone_counts_connection_errors() -> None:
    spec = ClientSpec("http-binary", "http://127.0.0.1:1", timeout_s=1.0)
    config = OpenLoopConfig(rate=50.0, duration_s=0.3, warmup_s=0.0, processes=0, drain_s=2.0)
    result = run_open_loop(spec, config)
    assert result.ok == 0
    assert result.error_count == result.due > 0
    assert all(kind.startswith("http ") for kind in result.errors)
