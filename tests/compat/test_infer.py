"""Inference on the demo model ``sim`` (OUTPUT0 = 2 x INPUT0), values checked."""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
import pytest
from _compat import V2, Target, raw_http

# (binary inputs, binary outputs, ask for outputs explicitly). gRPC has one encoding: raw.
HTTP_MODES = {
    "json": (False, False, True),
    "binary": (True, True, True),
    "json_in_binary_out": (False, True, True),
    "binary_in_json_out": (True, False, True),
    "all_outputs_default": (True, True, False),  # no outputs -> binary_data_output=true
}


async def _check_sim(
    client: V2, batch: int, binary_in: bool, binary_out: bool, explicit: bool, tag: str
) -> None:
    rng = np.random.default_rng(batch * 100 + len(tag))
    x = (rng.standard_normal((batch, 16)) * 100).astype(np.float32)
    result = await client.infer(
        "sim",
        [("INPUT0", x, "FP32")],
        outputs=["OUTPUT0"] if explicit else None,
        binary_in=binary_in,
        binary_out=binary_out,
        request_id=f"req-{tag}-{batch}",
    )
    y = result.as_numpy("OUTPUT0")
    assert y.dtype == np.float32 and y.shape == (batch, 16), (y.dtype, y.shape)
    np.testing.assert_array_equal(y, 2 * x)
    assert result.id == f"req-{tag}-{batch}"
    assert result.output_names == ["OUTPUT0"]


@pytest.mark.parametrize("kind", ["http", "http_aio"])
@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("mode", list(HTTP_MODES))
async def test_infer_values_http(client: V2, batch: int, mode: str) -> None:
    await _check_sim(client, batch, *HTTP_MODES[mode], tag=mode)


@pytest.mark.parametrize("kind", ["grpc", "grpc_aio"])
@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("explicit", [True, False], ids=["outputs", "all_outputs_default"])
async def test_infer_values_grpc(client: V2, batch: int, explicit: bool) -> None:
    await _check_sim(client, batch, True, True, explicit, tag=str(explicit))


async def test_infer_without_id(client: V2) -> None:
    x = np.ones((2, 16), np.float32)
    result = await client.infer("sim", [("INPUT0", x, "FP32")], outputs=["OUTPUT0"])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), 2 * x)


@pytest.mark.parametrize("kind", ["http_aio", "grpc_aio"])
async def test_concurrent_requests_get_their_own_answers(client: V2) -> None:
    """Many concurrent requests of different sizes (the gateway batches them): each answer must
    be its own request's, in its own shape."""
    rng = np.random.default_rng(11)
    xs = [
        (rng.standard_normal((int(rng.integers(1, 9)), 16)) * 10).astype(np.float32)
        for _ in range(120)
    ]

    async def one(i: int, x: np.ndarray) -> None:
        r = await client.infer(
            "sim", [("INPUT0", x, "FP32")], outputs=["OUTPUT0"], request_id=str(i)
        )
        assert r.id == str(i)
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), 2 * x)

    await asyncio.gather(*(one(i, x) for i, x in enumerate(xs)))


def test_http_binary_wire_format(target: Target) -> None:
    """The binary extension on the wire, checked byte by byte (header, sizes, layout)."""
    x = np.arange(32, dtype=np.float32).reshape(2, 16)
    header = json.dumps(
        {
            "id": "wire",
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [2, 16],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}],
        }
    ).encode()
    status, headers, body = raw_http(
        "POST",
        f"http://{target.http}/v2/models/sim/infer",
        header + x.tobytes(),
        {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header)),
        },
    )
    assert status == 200, body[:500]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert "inference-header-content-length" in lowered, headers
    n = int(lowered["inference-header-content-length"])
    doc = json.loads(body[:n])
    assert doc["id"] == "wire" and doc["model_name"] == "sim", doc
    (out,) = doc["outputs"]
    assert out["name"] == "OUTPUT0" and out["datatype"] == "FP32" and out["shape"] == [2, 16]
    assert out["parameters"]["binary_data_size"] == x.nbytes
    assert "data" not in out
    assert body[n:] == (2 * x).tobytes()


def test_http_json_wire_format(target: Target) -> None:
    """A pure JSON request (nested data) gets a pure JSON response; no binary header."""
    x = [[float(i) - 7.5 for i in range(16)]]
    status, _, body = raw_http(
        "POST",
        f"http://{target.http}/v2/models/sim/infer",
        json.dumps(
            {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": x}]}
        ).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body[:500]
    doc = json.loads(body)
    (out,) = doc["outputs"]
    assert out["name"] == "OUTPUT0" and out["shape"] == [1, 16]
    assert np.array(out["data"], np.float32).reshape(1, 16).tolist() == [[2 * v for v in x[0]]]
    # The C++ client requires binary_data_size in any output "parameters" object.
    assert "binary_data_size" in out.get("parameters", {"binary_data_size": 0})


def test_http_binary_bytes_prefix_layout(target: Target) -> None:
    """Not part of sim, but of the wire: BYTES elements are uint32 LE length + bytes."""
    elements = [b"", "ü".encode(), b"abc"]
    raw = b"".join(struct.pack("<I", len(e)) + e for e in elements)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [1, 3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}],
        }
    ).encode()
    status, headers, body = raw_http(
        "POST",
        f"http://{target.http}/v2/models/identity_bytes/infer",
        header + raw,
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 200, body[:500]
    n = int({k.lower(): v for k, v in headers.items()}["inference-header-content-length"])
    assert body[n:] == raw


async def test_infer_with_model_version(client: V2) -> None:
    """An explicit version (as perf_analyzer -x and Triton clients send) selects the model."""
    meta = await client.model_metadata("sim")
    version = (meta.get("versions") or ["1"])[0]
    x = np.full((3, 16), 1.25, np.float32)
    inputs = client.make_inputs([("INPUT0", x, "FP32")])
    raw = await client.call(
        "infer", "sim", inputs, model_version=version, outputs=client.make_outputs(["OUTPUT0"])
    )
    np.testing.assert_array_equal(raw.as_numpy("OUTPUT0"), 2 * x)
    assert await client.call("is_model_ready", "sim", version)
