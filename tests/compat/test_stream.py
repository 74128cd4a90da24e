"""Bidirectional ModelStreamInfer with the sync (callback) and asyncio gRPC clients."""

from __future__ import annotations

import queue
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc
import tritonclient.grpc.aio
from _compat import Target

N = 12


def _requests(bad_at: int | None = None) -> list[tuple[str, str, np.ndarray, str, str]]:
    """(request id, model, data, datatype, input name); every third goes to identity_int32."""
    rng = np.random.default_rng(3)
    reqs = []
    for i in range(N):
        if i % 3 == 2:
            x = rng.integers(-1000, 1000, (int(rng.integers(1, 5)), 3), dtype=np.int32)
            reqs.append((f"s{i}", "identity_int32", x, "INT32", "INPUT0"))
        else:
            x = rng.standard_normal((int(rng.integers(1, 9)), 16)).astype(np.float32)
            reqs.append((f"s{i}", "sim", x, "FP32", "INPUT0"))
    if bad_at is not None:
        rid, model, x, dt, _ = reqs[bad_at]
        reqs[bad_at] = (rid, model, x, dt, "NO_SUCH_INPUT")
    return reqs


def _expected(model: str, x: np.ndarray) -> np.ndarray:
    return 2 * x if model == "sim" else x


def _inputs(x: np.ndarray, dt: str, name: str) -> list[Any]:
    inp = tritonclient.grpc.InferInput(name, list(x.shape), dt)
    inp.set_data_from_numpy(x)
    return [inp]


def _check(results: dict[str, Any], reqs: list[tuple[str, str, np.ndarray, str, str]]) -> None:
    for rid, model, x, _, name in reqs:
        if name != "INPUT0":
            continue
        assert rid in results, f"no response for {rid}; got {sorted(results)}"
        np.testing.assert_array_equal(results[rid].as_numpy("OUTPUT0"), _expected(model, x))


@pytest.fixture(params=["gateway", "pod"])
def stream_target(request: pytest.FixtureRequest) -> Target:
    return request.getfixturevalue("gw_target" if request.param == "gateway" else "pod_direct")  # type: ignore[no-any-return]


def _run_sync_stream(
    target: Target, reqs: list[tuple[str, str, np.ndarray, str, str]]
) -> list[Any]:
    got: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = tritonclient.grpc.InferenceServerClient(target.grpc)
    try:
        client.start_stream(callback=lambda result, error: got.put((result, error)))
        for rid, model, x, dt, name in reqs:
            client.async_stream_infer(model, _inputs(x, dt, name), request_id=rid)
        out = [got.get(timeout=30) for _ in reqs]
        client.stop_stream()
    finally:
        client.close()
    return out


def test_stream_sync_many_requests(stream_target: Target) -> None:
    reqs = _requests()
    out = _run_sync_stream(stream_target, reqs)
    errors = [e for _, e in out if e is not None]
    assert not errors, errors
    results = {r.get_response().id: r for r, _ in out}
    _check(results, reqs)


def test_stream_sync_error_reported_and_stream_continues(stream_target: Target) -> None:
    reqs = _requests(bad_at=4)
    out = _run_sync_stream(stream_target, reqs)
    errors = [e for _, e in out if e is not None]
    assert len(errors) == 1, errors
    assert "NO_SUCH_INPUT" in errors[0].message(), errors[0].message()
    results = {r.get_response().id: r for r, e in out if e is None}
    _check(results, reqs)


async def _run_aio_stream(
    target: Target, reqs: list[tuple[str, str, np.ndarray, str, str]]
) -> list[tuple[Any, Any]]:
    client = tritonclient.grpc.aio.InferenceServerClient(target.grpc)
    try:

        async def gen() -> AsyncIterator[dict[str, Any]]:
            for rid, model, x, dt, name in reqs:
                yield {"model_name": model, "inputs": _inputs(x, dt, name), "request_id": rid}

        out = []
        responses = client.stream_infer(gen(), stream_timeout=30)
        async for result, error in responses:
            out.append((result, error))
            if len(out) == len(reqs):
                break
        responses.cancel()
        return out
    finally:
        await client.close()


async def test_stream_aio_many_requests(stream_target: Target) -> None:
    reqs = _requests()
    out = await _run_aio_stream(stream_target, reqs)
    errors = [e for _, e in out if e is not None]
    assert not errors, errors
    results = {r.get_response().id: r for r, _ in out}
    _check(results, reqs)


async def test_stream_aio_error_reported_and_stream_continues(stream_target: Target) -> None:
    reqs = _requests(bad_at=0)
    out = await _run_aio_stream(stream_target, reqs)
    errors = [e for _, e in out if e is not None]
    assert len(errors) == 1, errors
    assert "NO_SUCH_INPUT" in errors[0].message(), errors[0].message()
    _check({r.get_response().id: r for r, e in out if e is None}, reqs)
