"""A decoupled model of a real Triton behind the gateway: ``repeat_decoupled`` (Triton's Python
backend, ``model_transaction_policy { decoupled: true }``: n responses for INPUT0 = n).

The official ``tritonclient.grpc`` stream (``start_stream`` / ``async_stream_infer``) gets the
same responses through the gateway as from Triton directly: how many, in which order, their
values, the final flag, the empty final response only when asked, the model's error; and HTTP
infer and ModelInfer are refused through the gateway as Triton refuses them. Triton serves only
this model here (a repository of one link), so its start stays short. Skips without Triton.
"""

from __future__ import annotations

import json
import queue
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc
from _compat import Target, raw_http
from tritonclient.utils import InferenceServerException

from loadtest.stack import procs
from loadtest.stack.triton import MODEL_REPOSITORY, TritonProc, start_triton, triton_problem

MODEL = "repeat_decoupled"
FINAL = "triton_final_response"
# Each request: (id, n, asks for the empty final response). "neg" is the model's own error.
REQUESTS = [("a", 3, False), ("b", 0, False), ("c", 6, True), ("d", 0, True), ("neg", -1, False)]


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonProc]:
    problem = triton_problem()
    if problem is not None:
        pytest.skip(f"no real Triton to test against: {problem}")
    repository = Path(tmp_path_factory.mktemp("decoupled"))
    (repository / MODEL).symlink_to(MODEL_REPOSITORY / MODEL, target_is_directory=True)
    proc = start_triton(repository, stdout=subprocess.DEVNULL)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def via_gateway(triton: TritonProc) -> Iterator[Target]:
    """The gateway in front of ``triton``: several requests at once on its one pod."""
    model = {"name": MODEL, "endpoints": [triton.grpc_address], "max_inflight_per_pod": 8}
    gw = procs.start_gateway([model])
    yield Target("gateway", gw.http_url.removeprefix("http://"), gw.grpc_address)
    gw.stop()


@pytest.fixture(scope="module")
def direct(triton: TritonProc) -> Target:
    return Target("triton", triton.http_url.removeprefix("http://"), triton.grpc_address)


def count_input(n: int) -> tritonclient.grpc.InferInput:
    inp = tritonclient.grpc.InferInput("INPUT0", [1], "INT32")
    inp.set_data_from_numpy(np.array([n], dtype=np.int32))
    return inp


def expected_callbacks(requests: list[tuple[str, int, bool]]) -> int:
    """n responses each, one more for an asked-for final, one error for a negative n."""
    return sum(max(n, 0) + (1 if empty and n >= 0 else 0) + (n < 0) for _, n, empty in requests)


def stream(target: Target) -> tuple[dict[str, list[tuple[Any, ...]]], list[str]]:
    """Every request of REQUESTS on one stream: per id, each response as (OUTPUT0 or None,
    final flag), in arrival order; and the errors' messages."""
    got: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = tritonclient.grpc.InferenceServerClient(target.grpc)
    try:
        client.start_stream(callback=lambda result, error: got.put((result, error)))
        for rid, n, empty in REQUESTS:
            client.async_stream_infer(
                MODEL, [count_input(n)], request_id=rid, enable_empty_final_response=empty
            )
        out = [got.get(timeout=60) for _ in range(expected_callbacks(REQUESTS))]
        client.stop_stream()
    finally:
        client.close()
    assert got.empty()
    responses: dict[str, list[tuple[Any, ...]]] = {}
    errors: list[str] = []
    for result, error in out:
        if error is not None:
            errors.append(error.message())
            continue
        raw = result.get_response()
        value = result.as_numpy("OUTPUT0")
        flag = raw.parameters[FINAL].bool_param if FINAL in raw.parameters else None
        responses.setdefault(raw.id, []).append(
            (None if value is None else value.tolist(), flag, raw.model_name)
        )
    return responses, errors


def test_the_stream_through_the_gateway_equals_triton_directly(
    direct: Target, via_gateway: Target
) -> None:
    theirs, their_errors = stream(direct)
    ours, our_errors = stream(via_gateway)
    assert theirs["a"] == [([0], False, MODEL), ([1], False, MODEL), ([2], False, MODEL)]
    assert theirs["c"][-1] == (None, True, MODEL)  # the empty final response, asked for
    assert theirs["d"] == [(None, True, MODEL)]
    assert "b" not in theirs  # no response at all
    assert their_errors == ["count must be non-negative, got -1"]
    assert ours == theirs
    assert our_errors == their_errors


def _http_infer(target: Target) -> tuple[int, Any]:
    doc = {"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1], "data": [3]}]}
    status, _, body = raw_http(
        "POST",
        f"http://{target.http}/v2/models/{MODEL}/infer",
        json.dumps(doc).encode(),
        {"Content-Type": "application/json"},
    )
    return status, json.loads(body)


def _unary_error(target: Target) -> tuple[str, str]:
    client = tritonclient.grpc.InferenceServerClient(target.grpc)
    try:
        with pytest.raises(InferenceServerException) as err:
            client.infer(MODEL, [count_input(3)])
    finally:
        client.close()
    return str(err.value.status()), err.value.message()


def test_http_infer_and_model_infer_are_refused_as_triton_refuses_them(
    direct: Target, via_gateway: Target
) -> None:
    theirs = _http_infer(direct)
    assert theirs[0] == 501
    assert _http_infer(via_gateway) == theirs
    theirs_grpc = _unary_error(direct)
    assert theirs_grpc[0] == "StatusCode.UNIMPLEMENTED"
    assert _unary_error(via_gateway) == theirs_grpc
