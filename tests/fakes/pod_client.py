"""The one fake pod client: stands where ``gateway.backends.pod_client.PodClient`` does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from gateway.backends.pod_client import PodClient
from gateway.errors import Code, InferError
from protos import v2_grpc
from protos.infer import InferResponseBody
from protos.tensors import from_numpy, to_numpy

__all__ = ["FakePodClient", "FakePods"]


class FakePodClient:
    """A pod that needs no process: ready (``ready``), answers ``OUTPUT0 = 2·INPUT0``, or fails
    with ``error`` for ``fail_times`` calls (-1: always). With ``stall`` a call holds until its
    timeout (then DEADLINE_EXCEEDED, as gRPC's) or its cancellation (counted in ``cancelled``);
    ``answer`` turns the good reply into what the pod sends instead (a corrupt one)."""

    def __init__(self, address: str, model: str) -> None:
        self.address = address
        self.model = model
        self.ready = True
        self.closed = False
        self.error: Code | None = None
        self.fail_times = -1
        self.calls = 0
        self.stall = False
        self.cancelled = 0  # stalled calls cancelled by the gateway
        self.holding = 0  # stalled calls now held
        self.answer: Callable[[Any], Any] | None = None
        self.traceparents: list[str | None] = []  # each call's, None when it came untraced

    # The gRPC wire's batch codec: requests in, a ModelInferResponse back.
    encode_batch = PodClient.encode_batch
    decode_batch = PodClient.decode_batch
    begin = PodClient.begin  # every call awaited, as over gRPC

    async def infer(
        self,
        request: Any,
        timeout_s: float,
        connect_s: float | None = None,
        trace: str | None = None,
    ) -> Any:
        self.calls += 1
        self.traceparents.append(trace)
        if self.error is not None and self.fail_times != 0:
            self.fail_times -= 1
            raise InferError(self.error, f"{self.address}: {self.error.name}")
        if self.stall:
            await self._hold(timeout_s)
        body = v2_grpc.decode_request(request)
        x = to_numpy(body.inputs[0])
        out = InferResponseBody(self.model, [from_numpy("OUTPUT0", "FP32", 2 * x)], "", body.id)
        reply = v2_grpc.encode_response(out)
        return reply if self.answer is None else self.answer(reply)

    async def _hold(self, timeout_s: float) -> None:
        self.holding += 1
        try:
            await asyncio.sleep(timeout_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.holding -= 1
        raise InferError(Code.DEADLINE_EXCEEDED, f"pod {self.address}: Deadline Exceeded")

    async def model_ready(self, timeout_s: float) -> bool:
        return self.ready

    async def model_statistics(self, timeout_s: float) -> Any | None:
        return None  # keeps none, as MLServer: timed by its answers

    async def reconnected(self) -> None:
        """Returns when a test calls ``restart()`` (the pod came back on a new connection)."""
        self._restarted = asyncio.Event()
        await self._restarted.wait()

    def restart(self) -> None:
        self._restarted.set()

    async def close(self) -> None:
        self.closed = True


class FakePods(dict[str, FakePodClient]):
    """A ``client_factory`` for a PodSet that keeps each fake it made, by address."""

    def __call__(self, address: str, model: str) -> PodClient:
        self[address] = FakePodClient(address, model)
        return cast(PodClient, self[address])
