"""The open-loop generator against a real ``simpod`` at a low rate: every request succeeds,
answers are verified, and latency includes the pod's service time. Nothing about speed."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from loadtest.clients import ClientSpec, is_grpc
from loadtest.open_loop import OpenLoopConfig, run_open_loop
from loadtest.payload import SimPayload
from loadtest.procs import PodProc, start_pod

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)

FIXED_MS = 20


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod(["--fixed-ms", str(FIXED_MS), "--per-row-ms", "0", "--max-batch", "32"])
    yield proc
    proc.stop()


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
    assert result.summary().p50_us >= FIXED_MS * 1000
    assert result.lag().count == result.due


def test_generator_processes_merge_their_results(pod: PodProc) -> None:
    spec = ClientSpec("http-json", pod.http_url, SimPayload(), verify_every=1, timeout_s=5.0)
    config = OpenLoopConfig(rate=30.0, duration_s=1.0, warmup_s=0.2, processes=2, drain_s=5.0)
    result = run_open_loop(spec, config)
    assert result.error_count == 0, result.error_sample
    assert result.processes == 2
    assert result.ok == result.due > 0
    assert result.verified >= result.ok  # verify_every=1: every answer (plus the warm-up's)
    assert result.summary().p50_us >= FIXED_MS * 1000


def test_a_server_that_is_gone_counts_connection_errors() -> None:
    spec = ClientSpec("http-binary", "http://127.0.0.1:1", timeout_s=1.0)
    config = OpenLoopConfig(rate=50.0, duration_s=0.3, warmup_s=0.0, processes=0, drain_s=2.0)
    result = run_open_loop(spec, config)
    assert result.ok == 0
    assert result.error_count == result.due > 0
    assert all(kind.startswith("http ") for kind in result.errors)
