"""Test data of the compatibility suite: every v2 datatype, with its edge values.

Like ``_compat.py`` it imports no project module (see README.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DATATYPES", "bf16_round", "decode_bytes_array", "sample"]

# Every v2 datatype and the numpy type it travels as.
_NP = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BF16": np.float32,  # tritonclient carries BF16 as float32 and keeps the high 16 bits
    "BYTES": np.object_,
}
# The identity model of each is ``identity_<lowercase>``.
DATATYPES = list(_NP)

_BYTES_TEXT = ["", "héllo wörld", "日本語テキスト", "emoji 🙂🚀", "plain ascii", "", "a" * 300]
_BYTES_BINARY = [b"\x00", b"\xff\xfe\x00\x01", b"\x00" * 17]


def bf16_round(values: np.ndarray) -> np.ndarray:
    """float32 values truncated to what BF16 can hold (low 16 bits zero)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


def _float_edges(dt: str, json_safe: bool) -> list[float]:
    if dt == "BF16":
        raw = [0x7F7F0000, 0xFF7F0000, 0x00010000, 0x00800000, 0x80000000, 0x3F800000]
        if not json_safe:
            raw += [0x7F800000, 0xFF800000, 0x7FC00000]
        return list(np.array(raw, dtype=np.uint32).view(np.float32))
    info = np.finfo(_NP[dt])
    edges = [info.max, info.min, info.smallest_subnormal, info.tiny, -0.0, 1.0, -1.5]
    if not json_safe:
        edges += [np.inf, -np.inf, np.nan]
    return [_NP[dt](v) for v in edges]


def sample(
    dt: str, shape: tuple[int, ...], rng: np.random.Generator, *, json_safe: bool
) -> np.ndarray:
    """Random data of datatype ``dt`` with edge values in the first elements.

    ``json_safe`` leaves out what JSON cannot carry (inf, NaN, non-UTF-8 BYTES).
    """
    count = int(np.prod(shape))
    if dt == "BOOL":
        flat = rng.integers(0, 2, count).astype(np.bool_)
        edges: list[Any] = [True, False]
    elif dt == "BYTES":
        pool: list[bytes] = [s.encode() for s in _BYTES_TEXT]
        if not json_safe:
            pool += _BYTES_BINARY
        flat = np.empty(count, dtype=np.object_)
        for i in range(count):
            flat[i] = pool[i] if i < len(pool) else pool[int(rng.integers(0, len(pool)))]
        edges = []
    elif dt.startswith(("UINT", "INT")):
        info = np.iinfo(_NP[dt])
        flat = rng.integers(int(info.min), int(info.max), count, dtype=_NP[dt], endpoint=True)
        edges = [info.min, info.max, 0]
    else:
        flat = (rng.standard_normal(count) * 1000).astype(_NP[dt])
        if dt == "BF16":
            flat = bf16_round(flat)
        edges = _float_edges(dt, json_safe)
    for i, value in enumerate(edges[:count]):
        flat[i] = value
    return flat.reshape(shape)


def decode_bytes_array(arr: np.ndarray) -> list[bytes]:
    """A BYTES result as bytes, whether it came back binary (bytes) or as JSON (str)."""
    return [x.encode() if isinstance(x, str) else bytes(x) for x in arr.flatten().tolist()]
