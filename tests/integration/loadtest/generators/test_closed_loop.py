"""The closed-loop generator against a real ``simpod``, over every client kind.

Checks that requests succeed and answers are verified; it asserts nothing about speed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from loadtest.clients.base import CLIENT_KINDS, ClientSpec, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.closed_loop import ClosedLoopConfig, run_closed_loop
from loadtest.stack.procs import PodProc, start_pod

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)

POD_ARGS = ["--fixed-ms", "1", "--per-row-ms", "0.01", "--max-batch", "32"]
BRIEF = ClosedLoopConfig(concurrency=4, duration_s=1.0, warmup_s=0.2, processes=0)


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod(POD_ARGS)
    yield proc
    proc.stop()


def _spec(kind: str, pod: PodProc, rows: int = 1) -> ClientSpec:
    target = pod.grpc_address if is_grpc(kind) else pod.http_url
    return ClientSpec(kind, target, SimPayload(rows=rows), verify_every=4)


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_every_request_succeeds_with_a_verified_answer(kind: str, pod: PodProc) -> None:
    result = run_closed_loop(_spec(kind, pod, rows=3), BRIEF)
    assert result.error_count == 0, result.error_sample
    assert result.ok > 0
    assert result.verified > 0
    assert result.summary().count == result.ok


def test_worker_processes_merge_their_histograms(pod: PodProc) -> None:
    config = ClosedLoopConfig(concurrency=2, duration_s=1.0, warmup_s=0.2, processes=2)
    result = run_closed_loop(_spec("grpc", pod), config)
    assert result.error_count == 0, result.error_sample
    assert result.ok > 0
    assert result.verified >= 2  # each process checks its first answer
    assert result.summary().count == result.ok


def test_a_server_that_is_gone_counts_connection_errors() -> None:
    spec = ClientSpec("http-json", "http://127.0.0.1:1", verify_every=1)
    config = ClosedLoopConfig(concurrency=1, duration_s=0.2, warmup_s=0, processes=0)
    result = run_closed_loop(spec, config)
    assert result.ok == 0
    assert result.error_count > 0
    assert all(kind.startswith("http ") for kind in result.errors)
