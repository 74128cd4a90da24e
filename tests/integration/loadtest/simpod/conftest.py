"""Fixtures of the simpod integration tests: a pod per test module, a gRPC stub, an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import grpc
import pytest

from loadtest.stack.procs import PodProc, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.integration.loadtest.simpod.simpod_wire import FAST, MAX_MESSAGE


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    """A fast pod with two devices, serving ``sim`` and the identity models."""
    proc = start_pod([*FAST, "--identity-models", "--devices", "2"])
    yield proc
    assert proc.stop() == 0


@pytest.fixture
async def stub(pod: PodProc) -> AsyncIterator[pb_grpc.GRPCInferenceServiceStub]:
    async with grpc.aio.insecure_channel(pod.grpc_address, options=MAX_MESSAGE) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
