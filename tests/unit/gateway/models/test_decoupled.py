"""A decoupled model's relay over fake streaming pods: responses in order, the last returned, the
empty final one only when asked; a slot held from send to the last response and freed after
(however the call ends); a wait for a slot bounded by the deadline; a broken call named."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import pytest

from gateway.backends.stream_call import EMPTY_FINAL, FINAL, ends_request, is_empty_final
from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.models.decoupled import DecoupledRelay
from gateway.routing.pod_set import PodSet
from gateway.scheduler import Scheduler
from gateway.stats import ModelStats
from protos import grpc_service_pb2 as pb
from protos.infer import InferRequestBody
from protos.tensors import Tensor


def response(value: int | None = None, final: bool | None = False, error: str = "") -> Any:
    out = pb.ModelStreamInferResponse(error_message=error)
    answer = out.infer_response
    answer.model_name, answer.id = "pod-model", "pod-id"
    if final is not None:
        answer.parameters[FINAL].bool_param = final
    if value is not None:
        answer.outputs.add(name="OUTPUT0", datatype="INT32", shape=[1])
        answer.raw_output_contents.append(value.to_bytes(4, "little"))
    return out


class FakeStream:
    def __init__(self, items: list[Any], gate: asyncio.Event | None) -> None:
        self.items = list(items)
        self.gate = gate  # the last item waits for it
        self.cancelled = False

    async def read(self) -> Any | None:
        if len(self.items) == 1 and self.gate is not None:
            await self.gate.wait()
        item = self.items.pop(0) if self.items else None
        if isinstance(item, InferError):
            raise item
        return item

    def cancel(self) -> None:
        self.cancelled = True


class FakePod:
    """A pod whose every call answers ``items`` (an InferError among them: the call breaks)."""

    def __init__(self, address: str, model: str) -> None:
        self.address, self.model = address, model
        self.items: list[Any] = []
        self.gate: asyncio.Event | None = None
        self.sent: list[Any] = []
        self.streams: list[FakeStream] = []

    async def stream_infer(
        self, request: Any, timeout_s: float, connect_timeout_s: float, trace: str | None = None
    ) -> FakeStream:
        self.sent.append(request)
        self.streams.append(FakeStream(self.items, self.gate))
        return self.streams[-1]

    async def close(self) -> None:
        pass


class Metrics:
    def batch_sent(self, pod: str, rows: int, requests: int, reason: str) -> None:
        pass

    def queue_time(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


def relay_of(
    protocol: Literal["grpc", "http"] = "grpc",
) -> tuple[DecoupledRelay, PodSet, ModelSettings]:
    settings = ModelSettings(
        name="m", endpoints=["p:1"], pod_model="pod-model", backend_protocol=protocol
    )
    pods = PodSet(
        model="pod-model",
        addresses=["p:1"],
        probe_interval_s=1,
        probe_timeout_s=1,
        on_ready=lambda pod: None,
        client_factory=FakePod,  # type: ignore[arg-type]
        probing=False,
    )
    pods.start()
    scheduler = Scheduler(settings=settings, pods=pods, stats=ModelStats())
    relay = DecoupledRelay("m", pods, scheduler, Metrics())
    pods.get("p:1").slots = 1  # type: ignore[union-attr]
    return relay, pods, settings


def body(rid: str = "r", parameters: dict[str, Any] | None = None) -> InferRequestBody:
    tensor = Tensor("INPUT0", "INT32", (1,), bytes(4))
    return InferRequestBody([tensor], None, rid, dict(parameters or {}))


def test_which_response_ends_a_request() -> None:
    assert ends_request(response(1, final=True))
    assert not ends_request(response(1, final=False))
    assert ends_request(response(final=None, error="refused before it ran"))
    assert not ends_request(response(final=False, error="one bad response among others"))
    assert is_empty_final(response(final=True))
    assert not is_empty_final(response(1, final=True))
    assert not is_empty_final(response(final=True, error="e"))


async def test_responses_are_relayed_in_order_and_the_slot_freed() -> None:
    relay, pods, settings = relay_of()
    pod = pods.get("p:1")
    assert pod is not None
    fake: FakePod = pod.client  # type: ignore[assignment]
    fake.items = [response(0), response(1), response(final=True)]
    emitted: list[Any] = []

    async def emit(r: Any) -> None:
        assert pod.in_flight == 1  # held while its responses come
        emitted.append(r)

    last = await relay.call(settings, body("mine"), 1, time.monotonic() + 5, "", None, emit)
    assert last is None  # the empty final response: not asked for
    assert [r.infer_response.raw_output_contents[0][0] for r in emitted] == [0, 1]
    assert {(r.infer_response.model_name, r.infer_response.id) for r in emitted} == {("m", "mine")}
    (sent,) = fake.sent
    assert sent.model_name == "pod-model" and sent.id == "mine"
    assert sent.parameters[EMPTY_FINAL].bool_param is True
    assert (pod.in_flight, pod.outstanding_rows) == (0, 0)
    assert fake.streams[0].cancelled  # the call is ended once the last response is in
    fake.items = [response(final=True)]
    asked = body(parameters={EMPTY_FINAL: True})
    last = await relay.call(settings, asked, 1, time.monotonic() + 5, "", None, emit)
    assert last is not None and is_empty_final(last)


async def test_a_request_waits_for_the_slot_within_its_deadline() -> None:
    relay, pods, settings = relay_of()
    pod = pods.get("p:1")
    assert pod is not None
    fake: FakePod = pod.client  # type: ignore[assignment]
    fake.items, fake.gate = [response(0), response(1, final=True)], asyncio.Event()

    async def emit(r: Any) -> None:
        pass

    first = asyncio.create_task(
        relay.call(settings, body("1"), 1, time.monotonic() + 5, "", None, emit)
    )
    while pod.in_flight == 0:
        await asyncio.sleep(0)
    with pytest.raises(InferError) as err:  # the one slot stays taken past this deadline
        await relay.call(settings, body("2"), 1, time.monotonic() + 0.05, "", None, emit)
    assert err.value.code is Code.DEADLINE_EXCEEDED
    assert "waiting for a free slot of model 'm'" in err.value.message
    second = asyncio.create_task(
        relay.call(settings, body("3"), 1, time.monotonic() + 5, "", None, emit)
    )
    await asyncio.sleep(0.01)
    assert len(fake.sent) == 1 and relay._scheduler.unqueued.requests == 1  # waiting, queued
    fake.gate.set()
    for task, rid in ((first, "1"), (second, "3")):
        last = await task
        assert last is not None and last.infer_response.id == rid
    assert pod.in_flight == 0


async def test_a_broken_call_is_an_error_naming_the_pod_and_frees_the_slot() -> None:
    relay, pods, settings = relay_of()
    pod = pods.get("p:1")
    assert pod is not None
    fake: FakePod = pod.client  # type: ignore[assignment]
    fake.items = [response(0), InferError(Code.UNAVAILABLE, "pod p:1: Socket closed")]
    emitted: list[Any] = []

    async def emit(r: Any) -> None:
        emitted.append(r)

    with pytest.raises(InferError, match="pod p:1") as err:
        await relay.call(settings, body(), 1, time.monotonic() + 5, "", None, emit)
    assert err.value.code is Code.UNAVAILABLE
    assert len(emitted) == 1 and pod.in_flight == 0


async def test_no_ready_pod_and_a_rest_backend_are_refused() -> None:
    relay, pods, settings = relay_of()
    pods.set_addresses([])

    async def emit(r: Any) -> None:
        pass

    with pytest.raises(InferError) as err:
        await relay.call(settings, body(), 1, time.monotonic() + 0.02, "", None, emit)
    assert err.value.code is Code.UNAVAILABLE
    assert "no ready pod for model 'm'" in err.value.message
    relay, _, settings = relay_of("http")
    with pytest.raises(InferError) as err:
        await relay.call(settings, body(), 1, time.monotonic() + 5, "", None, emit)
    assert err.value.code is Code.UNIMPLEMENTED
    assert "backend_protocol is http" in err.value.message
