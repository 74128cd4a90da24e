"""KEDA's external scaler (``externalscaler.ExternalScaler``), served on the reports' gRPC port.

A ScaledObject trigger of type ``external`` or ``external-push`` with ``metadata: {model: sim}``
asks this autoscaler about the model ``sim``:

- ``IsActive``: whether the model has demand (queued or in-flight rows, or arrivals) in the
  gateways' live reports, summed by the ``ReportStore``.
- ``StreamIsActive``: the same, pushed: the current value when the stream opens, then again on
  every change. The receiver calls ``notify`` with each report's model, so the first report that
  shows a queue for a model at zero pushes ``true`` at once, not at the next tick; a timed
  re-check catches the reports' expiry (which no report announces).
- ``GetMetricSpec``: one metric, ``replicas-<model>``, target 1.
- ``GetMetrics``: the decider's desired replicas, so KEDA's HPA (AverageValue, target 1)
  computes exactly the autoscaler's count. Before the first decision: UNAVAILABLE.

A trigger without ``model`` gets INVALID_ARGUMENT; a model not configured here, NOT_FOUND.

A Deployment that serves several models is one decision: a trigger naming any of its models
gets the Deployment's desired count as its metric (still named ``replicas-<that model>``), and
is active while *any* of its models has demand (a report of any of them wakes its stream).
One ScaledObject per Deployment; one trigger is enough, several (one per model) agree.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from typing import Any

import grpc

from autoscaler.aggregate import ReportStore
from autoscaler.decider import Decision
from protos import externalscaler_pb2 as pb
from protos import externalscaler_pb2_grpc as pb_grpc

__all__ = ["METADATA_KEY", "ExternalScaler", "has_demand", "metric_name"]

METADATA_KEY = "model"  # the trigger's metadata key naming the model
RECHECK_S = 0.5  # StreamIsActive re-reads the store this often without a report


def metric_name(model: str) -> str:
    """The one metric of ``model`` (KEDA names the HPA's metric ``s<index>-`` + this)."""
    return f"replicas-{model}"


def has_demand(store: ReportStore, model: str, now: float) -> bool:
    """Whether the live reports of ``model`` show queued or in-flight rows, or arrivals."""
    load = store.load(model, now)
    if load is None:
        return False
    return bool(
        load.queued_requests
        or load.queued_rows
        or load.inflight_rows
        or load.arrival_rows_per_s > 0
        or load.arrived_requests_per_s > 0
    )


def _any_demand(store: ReportStore, models: Iterable[str], now: float) -> bool:
    return any(has_demand(store, m, now) for m in models)


class ExternalScaler(pb_grpc.ExternalScalerServicer):  # type: ignore[misc]
    """Answers KEDA from the store (activity) and the controller's decisions (the metric)."""

    def __init__(
        self,
        store: ReportStore,
        *,
        models: Collection[str],
        decisions: Callable[[], Mapping[str, Decision]],
        clock: Callable[[], float],
        recheck_s: float = RECHECK_S,
        shared: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self._store = store
        self._models = frozenset(models)
        # model -> the models of its Deployment (itself included); absent: itself alone
        self._shared = {m: tuple(shared.get(m, (m,))) if shared else (m,) for m in self._models}
        self._watchers: dict[str, tuple[str, ...]] = {}  # model -> the streams it wakes
        for m, group in self._shared.items():
            for other in group:
                self._watchers[other] = (*self._watchers.get(other, ()), m)
        self._decisions = decisions
        self._clock = clock
        self._recheck_s = recheck_s
        self._changed: dict[str, asyncio.Event] = {}

    def notify(self, model: str) -> None:
        """A report of ``model`` was recorded: wake the StreamIsActive streams of its
        Deployment's models."""
        for watcher in self._watchers.get(model, (model,)):
            event = self._changed.pop(watcher, None)
            if event is not None:
                event.set()

    def active(self, model: str) -> bool:
        """Whether any model of ``model``'s Deployment has demand."""
        return _any_demand(self._store, self._shared.get(model, (model,)), self._clock())

    async def _model(self, ref: Any, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """The model the trigger names, or the call aborted with why."""
        model = str(ref.scalerMetadata.get(METADATA_KEY, ""))
        if not model:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the trigger's metadata has no '{METADATA_KEY}' (scaledObject {ref.name!r}): "
                f"set metadata.{METADATA_KEY} to the model's name",
            )
        if model not in self._models:
            known = ", ".join(sorted(self._models))
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model {model!r} is not configured in this autoscaler (models: {known})",
            )
        return model

    async def IsActive(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        model = await self._model(request, context)
        return pb.IsActiveResponse(result=self.active(model))

    async def StreamIsActive(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        model = await self._model(request, context)
        last: bool | None = None
        while True:
            # Taken before the store is read: a report recorded while this stream is suspended
            # (in the yield) sets it, so the wait below returns at once.
            event = self._changed.setdefault(model, asyncio.Event())
            now = self.active(model)
            if now != last:
                last = now
                yield pb.IsActiveResponse(result=now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), self._recheck_s)

    async def GetMetricSpec(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        model = await self._model(request, context)
        spec = pb.MetricSpec(metricName=metric_name(model), targetSize=1, targetSizeFloat=1.0)
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def GetMetrics(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        model = await self._model(request.scaledObjectRef, context)
        decision = self._decisions().get(model)
        if decision is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"model {model!r}: no decision yet (starting)"
            )
        desired = decision.desired if decision is not None else 0
        value = pb.MetricValue(
            metricName=metric_name(model), metricValue=desired, metricValueFloat=float(desired)
        )
        return pb.GetMetricsResponse(metricValues=[value])
