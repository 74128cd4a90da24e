"""Each error the spec names, over both protocols and all four clients: status and message.

Bad input -> 400 / INVALID_ARGUMENT naming the problem; unknown model -> 404 / NOT_FOUND;
no ready pod -> 503 / UNAVAILABLE; body over the limit -> 413 / RESOURCE_EXHAUSTED;
a pod's own error -> its status (INTERNAL / 500) with its message.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from _compat import SHORT_TIMEOUT_MS, V2, Target, assert_error, json_error_body, raw_http

ROW = np.arange(16, dtype=np.float32).reshape(1, 16)


# -- bad input (400 / INVALID_ARGUMENT) ---------------------------------------------------------


async def test_wrong_input_name(gw_client: V2) -> None:
    exc = await gw_client.infer_error("sim", [("WRONG_NAME", ROW, "FP32")])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "WRONG_NAME")


async def test_wrong_datatype(gw_client: V2) -> None:
    x = np.arange(16, dtype=np.int32).reshape(1, 16)
    exc = await gw_client.infer_error("sim", [("INPUT0", x, "INT32")])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "datatype", "data type", "INT32")


async def test_wrong_shape(gw_client: V2) -> None:
    x = np.zeros((1, 15), np.float32)
    exc = await gw_client.infer_error("sim", [("INPUT0", x, "FP32")])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "shape", "15")


async def test_wrong_rank(gw_client: V2) -> None:
    x = np.zeros((16,), np.float32)
    exc = await gw_client.infer_error("sim", [("INPUT0", x, "FP32")])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "shape", "dim", "rank")


async def test_byte_size_mismatch(gw_client: V2) -> None:
    """Binary data of one row with a declared shape of two rows."""
    exc = await gw_client.infer_error("sim", [("INPUT0", ROW, "FP32")], shapes={"INPUT0": [2, 16]})
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "byte", "size", "128", "64")


@pytest.mark.parametrize("kind", ["http", "http_aio"])
async def test_json_element_count_mismatch(gw_client: V2) -> None:
    exc = await gw_client.infer_error(
        "sim", [("INPUT0", ROW, "FP32")], binary_in=False, shapes={"INPUT0": [2, 16]}
    )
    assert_error(exc, "http", "INVALID_ARGUMENT", "element", "shape", "32", "16")


async def test_batch_larger_than_max_batch_size(gw_client: V2) -> None:
    x = np.zeros((33, 16), np.float32)
    exc = await gw_client.infer_error("sim", [("INPUT0", x, "FP32")])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "batch", "33")


async def test_unexpected_extra_input(gw_client: V2) -> None:
    """sim has one input; an extra one is named in the error."""
    x = np.zeros((1, 16), np.float32)
    exc = await gw_client.infer_error("sim", [("INPUT0", x, "FP32"), ("INPUT1", x, "FP32")])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "INPUT1")


async def test_unknown_output(gw_client: V2) -> None:
    exc = await gw_client.infer_error("sim", [("INPUT0", ROW, "FP32")], outputs=["NO_SUCH_OUTPUT"])
    assert_error(exc, gw_client.protocol, "INVALID_ARGUMENT", "NO_SUCH_OUTPUT")


def _post(
    target: Target, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    status, _, raw = raw_http("POST", f"http://{target.http}{path}", body, headers)
    return status, json_error_body(raw)


def test_http_malformed_json(gw_target: Target) -> None:
    status, message = _post(gw_target, "/v2/models/sim/infer", b'{"inputs": [{"name": ')
    assert status == 400, message
    assert "json" in message.lower(), message


def test_http_json_not_an_object(gw_target: Target) -> None:
    status, message = _post(gw_target, "/v2/models/sim/infer", b"[1, 2, 3]")
    assert status == 400, message


def test_http_header_length_past_body(gw_target: Target) -> None:
    body = b'{"inputs": []}'
    status, message = _post(
        gw_target,
        "/v2/models/sim/infer",
        body,
        {"Inference-Header-Content-Length": str(len(body) + 100)},
    )
    assert status == 400, message


def test_http_binary_data_past_body(gw_target: Target) -> None:
    """binary_data_size says more bytes than the body holds."""
    import json

    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [1, 16],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 64},
                }
            ]
        }
    ).encode()
    status, message = _post(
        gw_target,
        "/v2/models/sim/infer",
        header + b"\x00" * 10,
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 400, message


def test_http_unknown_path_404(gw_target: Target) -> None:
    status, _, _ = raw_http("GET", f"http://{gw_target.http}/v2/no/such/path")
    assert status == 404


# -- unknown model (404 / NOT_FOUND) ------------------------------------------------------------


async def test_unknown_model_infer(gw_client: V2) -> None:
    exc = await gw_client.infer_error("no_such_model", [("INPUT0", ROW, "FP32")])
    assert_error(exc, gw_client.protocol, "NOT_FOUND", "no_such_model")


async def test_unknown_model_metadata(gw_client: V2) -> None:
    exc = await gw_client.error("get_model_metadata", "no_such_model")
    assert_error(exc, gw_client.protocol, "NOT_FOUND", "no_such_model")


async def test_unknown_model_config(gw_client: V2) -> None:
    exc = await gw_client.error("get_model_config", "no_such_model")
    assert_error(exc, gw_client.protocol, "NOT_FOUND", "no_such_model")


def test_http_unknown_model_error_body(gw_target: Target) -> None:
    status, _, body = raw_http("GET", f"http://{gw_target.http}/v2/models/no_such_model")
    assert status == 404
    assert "no_such_model" in json_error_body(body)


# -- the error stack: no ready pod, body limit, pod errors ---------------------------------------


@pytest.fixture
async def err_client(kind: str, error_stack: Any) -> AsyncIterator[V2]:
    c = V2(kind, error_stack.target)
    yield c
    await c.close()


@pytest.mark.parametrize("model", ["dead", "starting"])
async def test_no_ready_pod_unavailable(err_client: V2, model: str) -> None:
    t0 = time.monotonic()
    exc = await err_client.infer_error(model, [("INPUT0", ROW, "FP32")], outputs=["OUTPUT0"])
    elapsed = time.monotonic() - t0
    assert_error(exc, err_client.protocol, "UNAVAILABLE")
    # Answered by the model's default deadline (500 ms) — allow generous slack on a busy host.
    assert elapsed < SHORT_TIMEOUT_MS / 1000 + 10, elapsed


@pytest.mark.parametrize("model", ["dead", "starting"])
async def test_no_ready_pod_model_not_ready(err_client: V2, model: str) -> None:
    assert not await err_client.model_ready(model)


async def test_body_over_limit(err_client: V2) -> None:
    # One row passes the 1024-byte limit ...
    r = await err_client.infer("sim", [("INPUT0", ROW, "FP32")], outputs=["OUTPUT0"])
    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), 2 * ROW)
    # ... a valid 32-row request (2 KiB of tensor data) does not.
    x = np.ones((32, 16), np.float32)
    exc = await err_client.infer_error("sim", [("INPUT0", x, "FP32")], outputs=["OUTPUT0"])
    assert_error(exc, err_client.protocol, "RESOURCE_EXHAUSTED")


def test_http_body_over_limit_error_body(error_stack: Any) -> None:
    body = b'{"inputs": [' + b" " * 4096 + b"]}"
    status, _, raw = raw_http("POST", f"http://{error_stack.target.http}/v2/models/sim/infer", body)
    assert status == 413, raw[:300]
    json_error_body(raw)


async def test_pod_error_passed_on(kind: str, err_client: V2, error_stack: Any) -> None:
    """The failing pod answers INTERNAL; the gateway passes on its status and its message."""
    direct = V2(kind, error_stack.failing_target)
    try:
        pod_exc = await direct.infer_error("sim", [("INPUT0", ROW, "FP32")], outputs=["OUTPUT0"])
    finally:
        await direct.close()
    pod_message = assert_error(pod_exc, direct.protocol, "INTERNAL")
    exc = await err_client.infer_error(
        f"failing_{kind}", [("INPUT0", ROW, "FP32")], outputs=["OUTPUT0"]
    )
    message = assert_error(exc, err_client.protocol, "INTERNAL")
    assert pod_message in message, f"pod said {pod_message!r}, gateway said {message!r}"
