"""The v2 tensor encodings: datatypes, raw little-endian bytes, JSON data and typed contents.

A tensor is kept as raw row-major little-endian bytes from the moment it is parsed (BYTES
elements each carry a 4-byte little-endian length prefix, as in the binary extension); JSON
``data`` and gRPC ``InferTensorContents`` are converted once, here, with numpy.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DATATYPES",
    "CodecError",
    "DataType",
    "Tensor",
    "bytes_elements",
    "check_bytes_count",
    "check_bytes_room",
    "check_contents",
    "check_json_extent",
    "contents_to_raw",
    "datatype",
    "element_count",
    "from_numpy",
    "json_to_raw",
    "json_work",
    "raw_to_json",
    "serialize_bytes",
    "to_numpy",
]


class CodecError(ValueError):
    """Data that does not decode as the tensor it claims to be; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class DataType:
    """One v2 datatype: its numpy storage, element size and typed-contents field."""

    name: str
    numpy: np.dtype[Any] | None  # None for BYTES
    itemsize: int  # 0 for BYTES (variable)
    contents_field: str | None  # InferTensorContents field; None where only raw is allowed
    json_ok: bool
    kinds: str  # numpy kinds accepted from JSON data

    @property
    def is_bytes(self) -> bool:
        return self.numpy is None


def _dt(name: str, np_type: Any, field: str | None, json_ok: bool, kinds: str) -> DataType:
    dtype = None if np_type is None else np.dtype(np_type).newbyteorder("<")
    return DataType(name, dtype, 0 if dtype is None else dtype.itemsize, field, json_ok, kinds)


DATATYPES: dict[str, DataType] = {
    d.name: d
    for d in (
        _dt("BOOL", np.bool_, "bool_contents", True, "b"),
        _dt("UINT8", np.uint8, "uint_contents", True, "iu"),
        _dt("UINT16", np.uint16, "uint_contents", True, "iu"),
        _dt("UINT32", np.uint32, "uint_contents", True, "iu"),
        _dt("UINT64", np.uint64, "uint64_contents", True, "iu"),
        _dt("INT8", np.int8, "int_contents", True, "iu"),
        _dt("INT16", np.int16, "int_contents", True, "iu"),
        _dt("INT32", np.int32, "int_contents", True, "iu"),
        _dt("INT64", np.int64, "int64_contents", True, "iu"),
        _dt("FP16", np.float16, None, False, "iuf"),
        _dt("FP32", np.float32, "fp32_contents", True, "iuf"),
        _dt("FP64", np.float64, "fp64_contents", True, "iuf"),
        _dt("BF16", np.uint16, None, False, ""),  # stored as the upper 16 bits of an FP32
        _dt("BYTES", None, "bytes_contents", True, "U"),
    )
}

_LEN = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named tensor as raw bytes: the one representation every layer passes around."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: bytes


def element_count(shape: tuple[int, ...] | list[int]) -> int:
    """Elements in a tensor of this shape."""
    return math.prod(shape)


def datatype(name: str, what: str) -> DataType:
    """The DataType named ``name``, or a CodecError naming ``what`` carried it."""
    dt = DATATYPES.get(name)
    if dt is None:
        raise CodecError(f"{what}: unknown datatype '{name}'")
    return dt


def serialize_bytes(elements: list[bytes]) -> bytes:
    """BYTES elements as the binary extension lays them out: uint32 LE length, then the bytes."""
    return b"".join(_LEN.pack(len(e)) + e for e in elements)


def bytes_elements(raw: bytes | memoryview) -> list[bytes]:
    """Split length-prefixed BYTES data into its elements."""
    out: list[bytes] = []
    view = memoryview(raw)
    pos, end = 0, len(view)
    while pos < end:
        if pos + 4 > end:
            raise CodecError("BYTES data ends inside an element's 4-byte length prefix")
        (n,) = _LEN.unpack_from(view, pos)
        pos += 4
        if pos + n > end:
            raise CodecError(f"BYTES element of length {n} runs past the end of the data")
        out.append(bytes(view[pos : pos + n]))
        pos += n
    return out


def check_bytes_count(raw: bytes | memoryview, expected: int, what: str) -> None:
    """Raise unless length-prefixed BYTES data holds exactly ``expected`` elements."""
    view = memoryview(raw)
    pos, end, count = 0, len(view), 0
    while pos < end:
        if pos + 4 > end:
            raise CodecError(f"{what}: BYTES data ends inside an element's length prefix")
        (n,) = _LEN.unpack_from(view, pos)
        pos += 4 + n
        count += 1
        if pos > end:
            raise CodecError(f"{what}: BYTES element {count} runs past the end of the data")
    if count != expected:
        raise CodecError(f"{what}: BYTES data holds {count} elements, shape needs {expected}")


def check_bytes_room(size: int, count: int, what: str) -> None:
    """Raise unless ``size`` bytes can hold ``count`` BYTES elements (a 4-byte length prefix
    each), before any prefix is read."""
    if size < 4 * count or (count == 0 and size > 0):
        raise CodecError(
            f"{what}: BYTES data is {size} bytes, which cannot hold the {count} elements "
            "its shape needs (each has a 4-byte length prefix)"
        )


def json_work(shape: tuple[int, ...]) -> int:
    """What converting JSON data of ``shape`` costs, in elements: its elements, or its rows of
    nested lists where there are more (a zero last dimension)."""
    return max(element_count(shape), element_count(shape[:-1]))


def check_json_extent(data: Any, shape: tuple[int, ...], what: str) -> None:
    """Raise unless JSON ``data`` (flat row-major, or nested lists) holds the element count of
    ``shape``, reading list lengths only: the values are checked when they are converted."""
    count = element_count(shape)
    if not isinstance(data, list):
        found = 1
    elif not data or not isinstance(data[0], list):
        found = len(data)
    else:
        found = _nested_count(data, count, 2 * element_count(shape[:-1]) + 2, what)
    if found != count:
        raise CodecError(f"{what}: data has {found} elements, shape {list(shape)} needs {count}")


def _nested_count(data: list[Any], most: int, max_lists: int, what: str) -> int:
    """Values in nested lists, walking lists only; stops once past ``most`` values or
    ``max_lists`` lists (more than the shape can mean)."""
    found, lists, stack = 0, 0, [data]
    while stack:
        items = stack.pop()
        lists += 1
        if lists > max_lists:
            raise CodecError(f"{what}: data nests more lists than its shape has rows")
        if items and isinstance(items[0], list):
            if not all(isinstance(item, list) for item in items):
                raise CodecError(f"{what}: data is a ragged nested list")
            stack.extend(items)
        else:
            found += len(items)
            if found > most:
                break
    return found


def _to_bytes(element: Any, what: str) -> bytes:
    if isinstance(element, str):
        return element.encode()
    if isinstance(element, bytes):
        return element
    raise CodecError(f"{what}: BYTES data must be strings, got {type(element).__name__}")


def json_to_raw(dt: DataType, data: Any, count: int, what: str) -> bytes:
    """JSON ``data`` (flat or nested, row-major) as raw bytes of ``count`` elements of ``dt``."""
    if not dt.json_ok:
        raise CodecError(f"{what}: {dt.name} data must be sent as binary, not JSON")
    if not isinstance(data, list):
        data = [data]
    if dt.is_bytes:
        try:
            flat = np.asarray(data, dtype=object).ravel()
        except ValueError:
            raise CodecError(f"{what}: data is a ragged nested list") from None
        if flat.size != count:
            raise CodecError(f"{what}: data has {flat.size} elements, shape needs {count}")
        return serialize_bytes([_to_bytes(e, what) for e in flat.tolist()])
    try:
        arr = np.asarray(data)
    except (ValueError, OverflowError):
        raise CodecError(f"{what}: data is not a regular array of {dt.name} values") from None
    if arr.size != count:
        raise CodecError(f"{what}: data has {arr.size} elements, shape needs {count}")
    if count and arr.dtype.kind in "fO" and dt.numpy is not None and dt.numpy.kind in "iu":
        arr = _json_wide_ints(dt, data, arr, what)  # integers numpy read as floats or objects
    if count and arr.dtype.kind not in dt.kinds:
        raise CodecError(f"{what}: data holds {_kind_name(arr)} values, datatype is {dt.name}")
    assert dt.numpy is not None
    if arr.dtype.kind == "f" and dt.numpy.itemsize < arr.dtype.itemsize:
        with np.errstate(over="ignore"):  # beyond the narrower float: ±inf, as in Triton
            out = arr.astype(dt.numpy)
    else:  # no float narrowing, no warning to silence (errstate costs ~2 µs a tensor)
        out = arr.astype(dt.numpy)
    if arr.dtype.kind in "iu" and dt.numpy.kind in "iu" and not np.array_equal(out, arr):
        raise CodecError(f"{what}: data has values out of range for {dt.name}")
    return out.tobytes()


def _json_wide_ints(
    dt: DataType, data: Any, arr: np.ndarray[Any, Any], what: str
) -> np.ndarray[Any, Any]:
    """JSON integers for an integer datatype that numpy reads as float64 or objects: UINT64's
    values that need all 64 bits, else a CodecError for values out of ``dt``'s range (orjson
    reads an integer beyond 64 bits as a float); ``arr`` as it is for data with real floats."""
    assert dt.numpy is not None
    values = np.asarray(data, dtype=object).ravel().tolist()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if dt.name == "UINT64":
            try:
                return np.array(values, dtype=np.uint64)
            except OverflowError:
                pass
    elif arr.dtype.kind != "f" or not _integral_beyond(arr, np.iinfo(dt.numpy)):
        return arr
    raise CodecError(f"{what}: data has values out of range for {dt.name}")


def _integral_beyond(arr: np.ndarray[Any, Any], info: np.iinfo[Any]) -> bool:
    """Whether float ``arr`` holds whole numbers only, some beyond ``info``'s range."""
    whole = bool((np.isfinite(arr) & (np.trunc(arr) == arr)).all())  # NaN, ±inf: no
    low, high = float(info.min), float(info.max + 1)  # powers of two: exact as floats
    return whole and bool(((arr < low) | (arr >= high)).any())


def _kind_name(arr: np.ndarray[Any, Any]) -> str:
    return {"b": "boolean", "i": "integer", "u": "integer", "f": "floating-point"}.get(
        arr.dtype.kind, "non-numeric"
    )


def raw_to_json(dt: DataType, raw: bytes) -> Any:
    """Raw bytes as flat JSON-serializable data (a numpy array orjson writes, or a list)."""
    if dt.is_bytes:
        return [e.decode("utf-8", "replace") for e in bytes_elements(raw)]
    assert dt.numpy is not None
    if dt.name == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    arr = np.frombuffer(raw, dtype=dt.numpy)
    if dt.name == "FP16":
        return arr.astype(np.float32)
    return arr


def check_contents(dt: DataType, contents: Any, count: int, what: str) -> None:
    """Raise unless gRPC typed contents can carry ``dt`` and hold ``count`` values in its
    field (lengths only: nothing converted)."""
    if dt.contents_field is None:
        raise CodecError(f"{what}: {dt.name} data must be sent in raw_input_contents")
    values = getattr(contents, dt.contents_field)
    if len(values) != count:
        raise CodecError(
            f"{what}: {dt.contents_field} has {len(values)} elements, shape needs {count}"
        )


def contents_to_raw(dt: DataType, contents: Any, count: int, what: str) -> bytes:
    """gRPC typed ``InferTensorContents`` as raw bytes of ``count`` elements of ``dt``."""
    check_contents(dt, contents, count, what)
    assert dt.contents_field is not None
    values = getattr(contents, dt.contents_field)
    if dt.is_bytes:
        return serialize_bytes(list(values))
    assert dt.numpy is not None
    wide = np.array(values, dtype=np.float64 if dt.numpy.kind == "f" else None)
    out = wide.astype(dt.numpy)
    if dt.numpy.kind in "iu" and not np.array_equal(out, wide):
        raise CodecError(f"{what}: {dt.contents_field} has values out of range for {dt.name}")
    return out.tobytes()


def to_numpy(tensor: Tensor) -> np.ndarray[Any, Any]:
    """A tensor's data as a numpy array of its shape (object array of bytes for BYTES)."""
    dt = datatype(tensor.datatype, tensor.name)
    if dt.is_bytes:
        return np.array(bytes_elements(tensor.data), dtype=object).reshape(tensor.shape)
    assert dt.numpy is not None
    return np.frombuffer(tensor.data, dtype=dt.numpy).reshape(tensor.shape)


def from_numpy(name: str, datatype_name: str, array: np.ndarray[Any, Any]) -> Tensor:
    """A tensor from a numpy array (BYTES from an object array of bytes or str)."""
    dt = datatype(datatype_name, name)
    shape = tuple(int(d) for d in array.shape)
    if dt.is_bytes:
        data = serialize_bytes([_to_bytes(e, name) for e in array.ravel().tolist()])
    else:
        assert dt.numpy is not None
        data = np.ascontiguousarray(array, dtype=dt.numpy).tobytes()
    return Tensor(name, dt.name, shape, data)
