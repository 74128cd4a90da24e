"""Leader election through a coordination.k8s.io/v1 Lease, so two autoscalers never act at once.

The pure part, ``lease_step``, follows client-go: a Lease held by another identity is expired
only when its record has not changed for ``leaseDurationSeconds`` *as observed on our own
clock* (so skewed wall clocks do not matter). The shell, ``LeaderElector``, gets, creates or
replaces the Lease every retry period with the resourceVersion it read (a 409 means another
candidate won the race), stops leading when it could not renew within the renew deadline, and
on a clean stop releases the Lease so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from autoscaler.actuator import micro_time

__all__ = ["LeaderElector", "LeaseRecord", "Observed", "Step", "lease_step"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The fields of a Lease the election reads."""

    holder: str  # "" when released
    duration_s: float
    renew_time: str  # as the server stores it; compared for change, never parsed
    transitions: int
    resource_version: str


@dataclass(frozen=True, slots=True)
class Observed:
    """The last Lease record seen, and when (our monotonic clock) it was first seen."""

    key: tuple[str, str, int]
    at: float


class Step(enum.Enum):
    CREATE = "create"  # no Lease yet
    RENEW = "renew"  # ours: renew it
    ACQUIRE = "acquire"  # released, or its holder stopped renewing: take it
    WAIT = "wait"  # another holder's, still live


def lease_step(
    record: LeaseRecord | None, observed: Observed | None, identity: str, now: float
) -> tuple[Step, Observed | None]:
    """What to do with the Lease as read now, and the new observation."""
    if record is None:
        return Step.CREATE, None
    key = (record.holder, record.renew_time, record.transitions)
    if observed is None or observed.key != key:
        observed = Observed(key, now)
    if record.holder == identity:
        return Step.RENEW, observed
    if record.holder and now < observed.at + record.duration_s:
        return Step.WAIT, observed
    return Step.ACQUIRE, observed


def _record(lease: Any) -> LeaseRecord:
    spec = lease.spec
    renew = spec.renew_time if spec is not None else None
    return LeaseRecord(
        holder=(spec.holder_identity or "") if spec is not None else "",
        duration_s=float((spec.lease_duration_seconds or 0) if spec is not None else 0),
        renew_time=renew.isoformat() if isinstance(renew, datetime) else str(renew or ""),
        transitions=int((spec.lease_transitions or 0) if spec is not None else 0),
        resource_version=str(lease.metadata.resource_version),
    )


class LeaderElector:
    """Campaigns for the Lease until stopped; ``is_leader`` says whether to act now."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_period_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self._api: Any = client.CoordinationV1Api(api)  # dict bodies, sent as written
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._duration = lease_duration_s
        self._deadline = renew_deadline_s
        self._retry = retry_period_s
        self._clock = clock
        self._wall = wall_clock
        self._on_change = on_change
        self._observed: Observed | None = None
        self._renewed_at: float | None = None
        self._acquire_time: str | None = None
        self.is_leader = False

    def _set_leader(self, leading: bool) -> None:
        if leading != self.is_leader:
            self.is_leader = leading
            log.info("%s %s the lease %s", self.identity, "holds" if leading else "lost", self.name)
            self._on_change(leading)

    def _body(self, holder: str, transitions: int, rv: str | None) -> dict[str, Any]:
        now = micro_time(self._wall())
        if self._acquire_time is None or holder != self.identity:
            self._acquire_time = now
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if rv is not None:
            metadata["resourceVersion"] = rv
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": max(1, round(self._duration)),
                "acquireTime": self._acquire_time,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    async def step(self) -> bool:
        """One attempt to acquire or renew; returns whether this candidate leads afterwards."""
        now = self._clock()
        try:
            ok = await self._try(now)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("lease %s: %s", self.name, getattr(exc, "status", exc))
            ok = False
        if ok:
            self._renewed_at = now
            self._set_leader(True)
        elif self.is_leader and (
            self._renewed_at is None or now - self._renewed_at >= self._deadline
        ):
            self._set_leader(False)
        return self.is_leader

    async def _try(self, now: float) -> bool:
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            lease = None
        record = _record(lease) if lease is not None else None
        step, self._observed = lease_step(record, self._observed, self.identity, now)
        if step is Step.WAIT:
            if self.is_leader:  # someone else holds it now
                self._set_leader(False)
            return False
        try:
            if step is Step.CREATE:
                self._acquire_time = None
                await self._api.create_namespaced_lease(
                    self.namespace, self._body(self.identity, 0, None)
                )
            else:
                assert record is not None
                transitions = record.transitions + (step is Step.ACQUIRE)
                if step is Step.ACQUIRE:
                    self._acquire_time = None
                await self._api.replace_namespaced_lease(
                    self.name,
                    self.namespace,
                    self._body(self.identity, transitions, record.resource_version),
                )
        except ApiException as exc:
            if exc.status == 409:  # another candidate wrote first
                return False
            raise
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Campaign every retry period until ``stop``; then release the Lease if held."""
        while not stop.is_set():
            await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry)
        await self.release()

    async def release(self) -> None:
        """Give the Lease up (holder "") so a standby need not wait out the duration."""
        if not self.is_leader:
            return
        self._set_leader(False)
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
            record = _record(lease)
            if record.holder != self.identity:
                return
            body = self._body("", record.transitions, record.resource_version)
            body["spec"]["leaseDurationSeconds"] = 1
            await self._api.replace_namespaced_lease(self.name, self.namespace, body)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("cannot release lease %s: %s", self.name, exc)
