"""A scheduler over fake pods (``tests.fakes.pod_client``), wired as ModelRuntime wires it,
and a request to send it."""

from __future__ import annotations

import time

import numpy as np

from gateway.config import ModelSettings
from gateway.routing.outlier import OutlierDetector, OutlierPolicy
from gateway.routing.pod_set import PodSet
from gateway.routing.retry_budget import RetryBudget
from gateway.scheduler import Scheduler
from gateway.stats import ModelStats
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy
from tests.fakes.pod_client import FakePods

__all__ = ["ask", "fake_scheduler"]


async def fake_scheduler(
    n: int, budget: RetryBudget | None = None
) -> tuple[Scheduler, PodSet, FakePods]:
    """A started scheduler over ``n`` ready fake pods of one slot each (``p0:1``, ...)."""
    fakes = FakePods()
    pods = PodSet(
        model="m",
        addresses=[f"p{i}:1" for i in range(n)],
        probe_interval_s=10.0,
        probe_timeout_s=1.0,
        on_ready=lambda pod: None,
        client_factory=fakes,
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
    """One 1-row request of ``value``s; its OUTPUT0."""
    x = np.full((1, 4), value, dtype=np.float32)
    body = InferRequestBody([from_numpy("INPUT0", "FP32", x)])
    out = await scheduler.submit(body, 1, time.monotonic() + timeout_s)
    return to_numpy(out[0])
