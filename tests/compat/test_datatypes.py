"""Every v2 datatype, round-tripped through the identity models (OUTPUT0 == INPUT0).

Binary (HTTP binary extension, gRPC raw contents) must be bit-exact, NaN payloads included;
JSON carries what JSON can (no inf/NaN, UTF-8 BYTES only; FP16/BF16 are binary only).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from _compat import V2, assert_error
from _data import DATATYPES, decode_bytes_array, sample

SHAPE = (4, 5)
JSON_TYPES = [dt for dt in DATATYPES if dt not in ("FP16", "BF16")]


def check_same(dt: str, got: np.ndarray, want: np.ndarray) -> None:
    assert tuple(got.shape) == tuple(want.shape), (got.shape, want.shape)
    if dt == "BYTES":
        assert decode_bytes_array(got) == decode_bytes_array(want)
        return
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    # Bit-exact: -0.0, subnormals and NaN payloads survive.
    assert got.tobytes() == want.tobytes(), f"\n got {got!r}\nwant {want!r}"


@pytest.mark.parametrize("dt", DATATYPES)
async def test_identity_binary(client: V2, dt: str) -> None:
    rng = np.random.default_rng(zlib.crc32(dt.encode()))
    x = sample(dt, SHAPE, rng, json_safe=False)
    model = f"identity_{dt.lower()}"
    result = await client.infer(
        model, [("INPUT0", x, dt)], outputs=["OUTPUT0"], binary_in=True, binary_out=True
    )
    check_same(dt, result.as_numpy("OUTPUT0"), x)
    resp = result.response()
    out = resp["outputs"][0] if client.protocol == "http" else resp.outputs[0]
    datatype = out["datatype"] if client.protocol == "http" else out.datatype
    assert datatype == dt


@pytest.mark.parametrize("kind", ["http", "http_aio"])
@pytest.mark.parametrize("dt", JSON_TYPES)
async def test_identity_json(client: V2, dt: str) -> None:
    rng = np.random.default_rng(zlib.crc32(dt.encode()) + 1)
    x = sample(dt, SHAPE, rng, json_safe=True)
    model = f"identity_{dt.lower()}"
    result = await client.infer(
        model, [("INPUT0", x, dt)], outputs=["OUTPUT0"], binary_in=False, binary_out=False
    )
    got = result.as_numpy("OUTPUT0")
    resp = result.response()
    assert "data" in resp["outputs"][0], "JSON output requested, got binary"
    check_same(dt, got, x)


@pytest.mark.parametrize("kind", ["http", "grpc"])
@pytest.mark.parametrize("dt", ["BYTES", "FP32", "INT64"])
async def test_identity_zero_columns(client: V2, dt: str) -> None:
    """A tensor with zero elements ([2, 0]) is valid."""
    x = sample(dt, (2, 0), np.random.default_rng(0), json_safe=False)
    result = await client.infer(f"identity_{dt.lower()}", [("INPUT0", x, dt)], outputs=["OUTPUT0"])
    got = result.as_numpy("OUTPUT0")
    assert tuple(got.shape) == (2, 0)


@pytest.mark.parametrize("kind", ["http", "grpc"])
async def test_identity_bytes_only_empty_elements(client: V2) -> None:
    x = np.array([[b"", b""], [b"", b""]], dtype=np.object_)
    result = await client.infer("identity_bytes", [("INPUT0", x, "BYTES")], outputs=["OUTPUT0"])
    assert decode_bytes_array(result.as_numpy("OUTPUT0")) == [b""] * 4


@pytest.mark.parametrize("kind", ["http", "http_aio"])
async def test_fp16_json_rejected(client: V2) -> None:
    """FP16 is binary-only in the v2 JSON body; the server must say so (400), not guess."""
    x = np.array([[1.5, -2.0]], dtype=np.float16)
    exc = await client.infer_error(
        "identity_fp16", [("INPUT0", x, "FP16")], outputs=["OUTPUT0"], binary_in=False
    )
    assert_error(exc, "http", "INVALID_ARGUMENT", "FP16", "binary")
