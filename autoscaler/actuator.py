"""The actuator: reads and patches ``apps/v1 deployments/{name}/scale``, and records Events.

It patches only when the desired count differs from the Deployment's, with the read's
resourceVersion as a precondition (merge-patch): a 409 means another writer got there first, so
it re-reads and decides again on fresh data. 429 waits for Retry-After; 5xx and connection
errors back off exponentially. Each change is recorded as a core/v1 Event on the Deployment,
reason ``SuccessfulRescale`` and ``from → to`` like the HPA's. It holds no policy.

``DeploymentScaler`` keeps the last read: it GETs the scale again only after a patch, on a 409,
on becoming the leader, and every ``resync_s`` (a change made by someone else shows within
that); never on every tick, and it never watches (RBAC stays get/patch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = [
    "DeploymentScaler",
    "ScaleActuator",
    "ScaleError",
    "ScaleResult",
    "ScaleView",
    "micro_time",
]

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"


def micro_time(at: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ScaleError(Exception):
    """The scale subresource could not be read or written within the attempts allowed."""


@dataclass(frozen=True, slots=True)
class ScaleView:
    replicas: int  # spec.replicas (None after scaling to 0 reads as 0)
    status_replicas: int
    resource_version: str


@dataclass(frozen=True, slots=True)
class ScaleResult:
    previous: int
    replicas: int
    patched: bool
    conflicts: int = 0


def _retry_after(exc: ApiException) -> float | None:
    headers: Any = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ScaleActuator:
    """Scale subresource reads and writes with retries, and Events, over kubernetes-asyncio."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        component: str = "inference-autoscaler",
        instance: str = "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        attempts: int = 6,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        # Typed as Any: the client's stubs want model objects; dict bodies are sent as written.
        self._apps: Any = client.AppsV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self._component = component
        self._instance = instance
        self._sleep = sleep
        self._wall = wall_clock
        self._attempts = attempts
        self._base = backoff_base_s
        self._cap = backoff_cap_s
        self._timeout = request_timeout_s

    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        """One API call with 429/5xx/connection retries; a 409 or other 4xx is raised."""
        for attempt in range(self._attempts):
            try:
                return await fn()
            except ApiException as exc:
                if exc.status == 429:
                    delay = _retry_after(exc) or self._backoff(attempt)
                elif exc.status >= 500:
                    delay = self._backoff(attempt)
                else:
                    raise
                log.warning("%s: HTTP %d, retrying in %.2f s", what, exc.status, delay)
            except (aiohttp.ClientError, TimeoutError) as exc:
                delay = self._backoff(attempt)
                log.warning("%s: %s, retrying in %.2f s", what, exc, delay)
            await self._sleep(delay)
        raise ScaleError(f"{what}: gave up after {self._attempts} attempts")

    def _backoff(self, attempt: int) -> float:
        # The autoscaler keeps its own copy of this rule (gateway/backoff.py is the gateway's):
        # it shares only ``protos/`` with the gateway, never imports it.
        return float(min(self._cap, self._base * 2**attempt))

    async def read(self, namespace: str, name: str) -> ScaleView:
        scale = await self._call(
            f"read {namespace}/{name}/scale",
            lambda: self._apps.read_namespaced_deployment_scale(
                name, namespace, _request_timeout=self._timeout
            ),
        )
        return ScaleView(
            replicas=int(scale.spec.replicas or 0) if scale.spec else 0,
            status_replicas=int(scale.status.replicas or 0) if scale.status else 0,
            resource_version=str(scale.metadata.resource_version),
        )

    async def scale(
        self, namespace: str, name: str, replicas: int, reason: str, known: ScaleView | None = None
    ) -> ScaleResult:
        """Set spec.replicas to ``replicas`` unless it already is; record an Event if changed.

        ``known``: a read to start from (its resourceVersion is the precondition, so a stale
        one costs a 409 and a re-read); None reads first."""
        conflicts = 0
        view = known
        for _ in range(self._attempts):
            if view is None:
                view = await self.read(namespace, name)
            if view.replicas == replicas:
                return ScaleResult(view.replicas, replicas, patched=False, conflicts=conflicts)
            try:
                await self._call(
                    f"patch {namespace}/{name}/scale",
                    self._patcher(namespace, name, replicas, view.resource_version),
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise ScaleError(f"patch {namespace}/{name}/scale: HTTP {exc.status}") from exc
                conflicts += 1
                log.info("scale of %s/%s changed under us (409); re-reading", namespace, name)
                view = None
                continue
            log.info(
                "scaled %s/%s from %d to %d (%s)", namespace, name, view.replicas, replicas, reason
            )
            await self._event(namespace, name, view.replicas, replicas, reason)
            return ScaleResult(view.replicas, replicas, patched=True, conflicts=conflicts)
        raise ScaleError(f"scale {namespace}/{name}: {conflicts} conflicts in a row")

    def _patcher(
        self, namespace: str, name: str, replicas: int, resource_version: str
    ) -> Callable[[], Awaitable[Any]]:
        """A merge-patch of spec.replicas, preconditioned on the resourceVersion read."""
        body = {"metadata": {"resourceVersion": resource_version}, "spec": {"replicas": replicas}}

        def patch() -> Awaitable[Any]:
            return self._apps.patch_namespaced_deployment_scale(  # type: ignore[no-any-return]
                name, namespace, body, _content_type=MERGE_PATCH, _request_timeout=self._timeout
            )

        return patch

    async def _event(self, namespace: str, name: str, old: int, new: int, reason: str) -> None:
        now = self._wall()
        stamp = micro_time(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{int(now.timestamp() * 1e9):x}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
                "namespace": namespace,
            },
            "reason": "SuccessfulRescale",
            "message": f"New size: {new}; reason: {reason}; from {old} to {new}",
            "type": "Normal",
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance,
            "firstTimestamp": stamp.split(".")[0] + "Z",
            "lastTimestamp": stamp.split(".")[0] + "Z",
            "count": 1,
        }
        try:
            await self._call(
                f"event on {namespace}/{name}",
                lambda: self._core.create_namespaced_event(
                    namespace, body, _request_timeout=self._timeout
                ),
            )
        except (ApiException, ScaleError) as exc:  # an Event is a record, never a reason to fail
            log.warning("cannot record the scale event of %s/%s: %s", namespace, name, exc)


class DeploymentScaler:
    """The controller's Scaler over a ScaleActuator: current counts and applied decisions.

    A count is read once and kept until a patch (or a failed one) forgets it, ``refresh``
    asks for it, or it is ``resync_s`` old.
    """

    def __init__(
        self,
        actuator: ScaleActuator,
        *,
        resync_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._actuator = actuator
        self._resync = resync_s
        self._clock = clock
        self._views: dict[tuple[str, str], tuple[float, ScaleView]] = {}  # (ns, name): read

    async def current(self, target: Any, *, refresh: bool = False) -> int:
        key = (target.namespace, target.deployment)
        now = self._clock()
        kept = self._views.get(key)
        if refresh or kept is None or now - kept[0] >= self._resync:
            kept = now, await self._actuator.read(*key)
            self._views[key] = kept
        return kept[1].replicas

    async def apply(self, target: Any, decision: Any) -> None:
        kept = self._views.pop((target.namespace, target.deployment), None)
        await self._actuator.scale(
            target.namespace,
            target.deployment,
            decision.desired,
            decision.reason.value,
            known=kept[1] if kept is not None else None,
        )
