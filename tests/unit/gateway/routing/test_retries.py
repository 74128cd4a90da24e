"""The scheduler's failure handling with fake pods: retry elsewhere within the budget, pass bad
input back, and never count the gateway's own rejections against a pod."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import numpy as np
import pytest

from gateway.backends.pod_client import PodClient
from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.routing.outlier import OutlierDetector, OutlierPolicy
from gateway.routing.pod_set import PodSet
from gateway.routing.retry_budget import RetryBudget
from gateway.scheduler import Scheduler
from gateway.stats import ModelStats
from protos import v2_grpc
from protos.infer import InferRequestBody, InferResponseBody
from protos.tensors import from_numpy, to_numpy


class FakePod:
    """Answers 2·x, or fails with ``error`` (for ``fail_times`` calls; -1: always)."""

    def __init__(self, address: str, model: str) -> None:
        self.address = address
        self.model = model
        self.error: Code | None = None
        self.fail_times = -1
        self.calls = 0

    async def infer(self, request: Any, timeout_s: float, connect_s: float | None = None) -> Any:
        self.calls += 1
        if self.error is not None and self.fail_times != 0:
            self.fail_times -= 1
            raise InferError(self.error, f"{self.address}: {self.error.name}")
        body = v2_grpc.decode_request(request)
        x = to_numpy(body.inputs[0])
        out = InferResponseBody("m", [from_numpy("OUTPUT0", "FP32", 2 * x)], "", body.id)
        return v2_grpc.encode_response(out)

    async def model_ready(self, timeout_s: float) -> bool:
        return True

    async def close(self) -> None:
        pass


async def setup(
    n: int, budget: RetryBudget | None = None
) -> tuple[Scheduler, PodSet, dict[str, FakePod]]:
    fakes: dict[str, FakePod] = {}

    def factory(address: str, model: str) -> PodClient:
        fakes[address] = FakePod(address, model)
        return cast(PodClient, fakes[address])

    pods = PodSet(
        model="m",
        addresses=[f"p{i}:1" for i in range(n)],
        probe_interval_s=10.0,
        probe_timeout_s=1.0,
        on_ready=lambda pod: None,
        client_factory=factory,
        outliers=OutlierDetector(OutlierPolicy(consecutive_failures=2)),
        retry_budget=budget,
    )
    settings = ModelSettings(name="m", endpoints=[f"p{i}:1" for i in range(n)])
    scheduler = Scheduler(settings=settings, pods=pods, stats=ModelStats())
    pods._on_change = scheduler.wake  # as ModelRuntime wires it
    for p in pods.pods:
        await pods.probe(p)
        p.slots = 1
    scheduler.start()
    return scheduler, pods, fakes


async def ask(scheduler: Scheduler, value: float, timeout_s: float = 5.0) -> np.ndarray:
    x = np.full((1, 4), value, dtype=np.float32)
    body = InferRequestBody([from_numpy("INPUT0", "FP32", x)])
    out = await scheduler.submit(body, 1, time.monotonic() + timeout_s)
    return to_numpy(out[0])


async def test_an_unavailable_pod_s_batch_goes_to_another_pod() -> None:
    scheduler, pods, fakes = await setup(2)
    fakes["p0:1"].error = Code.UNAVAILABLE
    answers = await asyncio.gather(*(ask(scheduler, float(i)) for i in range(6)))
    for i, a in enumerate(answers):
        assert (a == 2 * i).all()
    assert [p.address for p in pods.ready_pods()] == ["p1:1"]
    await scheduler.stop()


async def test_bad_input_is_passed_back_not_retried_and_not_held_against_the_pod() -> None:
    scheduler, pods, fakes = await setup(2)
    for f in fakes.values():
        f.error = Code.INVALID_ARGUMENT
    for _ in range(4):
        with pytest.raises(InferError) as info:
            await ask(scheduler, 1.0)
        assert info.value.code is Code.INVALID_ARGUMENT
    assert sum(f.calls for f in fakes.values()) == 4
    assert len(pods.ready_pods()) == 2 and pods.outliers.ejected(time.monotonic()) == 0
    await scheduler.stop()


async def test_internal_errors_eject_the_pod_after_the_streak() -> None:
    scheduler, pods, fakes = await setup(3)
    fakes["p0:1"].error = Code.INTERNAL
    results = await asyncio.gather(
        *(ask(scheduler, 1.0) for _ in range(30)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, InferError)]
    assert all(r.code is Code.INTERNAL for r in failed)
    assert 1 <= len(failed) <= 2  # passed back, never retried, until ejected after 2
    assert "p0:1" not in {p.address for p in pods.ready_pods()}
    await scheduler.stop()


async def test_when_the_retry_budget_is_spent_the_error_is_explicit() -> None:
    scheduler, pods, fakes = await setup(2, RetryBudget(percent=0.0, floor=0))
    fakes["p0:1"].error = Code.RESOURCE_EXHAUSTED  # retryable; does not mark the pod down
    fakes["p1:1"].error = Code.RESOURCE_EXHAUSTED
    with pytest.raises(InferError) as info:
        await ask(scheduler, 1.0)
    assert info.value.code is Code.UNAVAILABLE and "retry budget" in info.value.message
    assert pods.retry_budget.refused == 1
    await scheduler.stop()


async def test_requests_that_expire_in_the_gateway_queue_never_count_against_a_pod() -> None:
    scheduler, pods, fakes = await setup(1)
    pod = pods.pods[0]
    pod.in_flight = pod.slots  # busy: nothing can be sent
    results = await asyncio.gather(
        *(ask(scheduler, 1.0, timeout_s=0.05) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, InferError) for r in results)
    assert fakes["p0:1"].calls == 0
    pod.in_flight = 0
    assert pods.outliers.ejection_count("p0:1") == 0 and pods.ready_pods() == (pod,)
    await scheduler.stop()
