"""Helpers of the simpod integration tests: requests, sample tensors, calls and metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import PodProc, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_http
from protos.infer import InferRequestBody
from protos.tensors import DATATYPES, Tensor, from_numpy

__all__ = [
    "FAST",
    "MAX_MESSAGE",
    "decode_http",
    "grpc_error",
    "grpc_infer_error",
    "http_infer",
    "metric",
    "own_pod",
    "sample",
    "sim_request",
    "until",
]

FAST = ["--fixed-ms", "1", "--per-row-ms", "0.01", "--max-batch", "32"]
MAX_MESSAGE = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def sim_request(rows: int, seed: int = 0) -> tuple[InferRequestBody, np.ndarray]:
    data = np.random.default_rng(seed).standard_normal((rows, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", data)], id=f"r{seed}"), data


def sample(datatype: str, rows: int = 3, cols: int = 5) -> Tensor:
    """Random data of ``datatype``, [rows, cols]."""
    rng = np.random.default_rng(len(datatype))
    if datatype == "BYTES":
        values = [
            bytes(rng.integers(0, 256, int(rng.integers(0, 9)), dtype=np.uint8))
            for _ in range(rows * cols)
        ]
        values[0] = "é€".encode()
        values[1] = b""
        return from_numpy("INPUT0", "BYTES", np.array(values, dtype=object).reshape(rows, cols))
    if datatype == "BOOL":
        return from_numpy("INPUT0", "BOOL", rng.integers(0, 2, (rows, cols)).astype(bool))
    if datatype == "BF16":  # upper halves of FP32 values
        bits = rng.standard_normal((rows, cols), dtype=np.float32).view(np.uint32) >> 16
        return from_numpy("INPUT0", "BF16", bits.astype(np.uint16))
    dtype = DATATYPES[datatype].numpy
    assert dtype is not None
    if dtype.kind == "f":
        array = rng.standard_normal((rows, cols)) * 100
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, (rows, cols), dtype=dtype, endpoint=True)
    return from_numpy("INPUT0", datatype, array.astype(dtype))


async def grpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def http_infer(
    session: aiohttp.ClientSession, url: str, request: InferRequestBody, binary: bool
) -> tuple[int, bytes, dict[str, str]]:
    body, json_length = v2_http.encode_request(request, binary)
    headers = {} if json_length is None else {v2_http.HEADER_LENGTH: str(json_length)}
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


def decode_http(body: bytes, headers: dict[str, str]) -> Any:
    length = headers.get(v2_http.HEADER_LENGTH)
    return v2_http.decode_response(body, None if length is None else int(length))


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Poll ``check`` until it holds (a condition to reach, not a timing measurement)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def grpc_infer_error(
    pod: PodProc, msg: pb.ModelInferRequest, timeout: float | None = None
) -> grpc.aio.AioRpcError:
    """The error a ModelInfer of ``msg`` to ``pod`` fails with, on a channel of its own."""
    async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        return await grpc_error(stub.ModelInfer(msg, timeout=timeout))


async def metric(session: aiohttp.ClientSession, pod: PodProc, name: str, **labels: str) -> float:
    """The value of sample ``name`` with ``labels`` on the pod's ``/metrics``."""
    async with session.get(f"{pod.http_url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    value = parse_metrics(text).total(name, **labels)
    assert value is not None, f"{name}{labels} not in /metrics"
    return value


@contextlib.contextmanager
def own_pod(
    args: Sequence[str], *, wait_ready: bool = True, clean_exit: bool = True
) -> Iterator[PodProc]:
    """A pod of the test's own, stopped at the end; with ``clean_exit`` it must exit 0."""
    pod = start_pod(args, wait_ready=wait_ready)
    try:
        yield pod
    finally:
        code = pod.stop()
        assert code == 0 or not clean_exit, f"the pod exited with {code}"
