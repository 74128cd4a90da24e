"""Sending requests on to the replica that owns a pod, when this replica owns none.

With fewer pods than gateway replicas, each pod is owned by one replica that batches for it
alone (gateway.routing.shares); the other replicas hold no slot of it and send each request,
as it came, to an owner over the owners' REST front-end with binary tensors (the cheapest wire
the gateway speaks: its hand-written HTTP server). The owner batches it with its own, so every
row of a pod's arrivals is batched together, as behind one gateway.

The forwarding shell is the scheduler itself with the owners as its "pods": a request goes at
once to the owner with the fewest requests in flight (many slots each, so a request never waits
for one), unbatched (the owner batches), retried on another owner if one cannot take it, and
served from the local pods instead when no owner is ready (``usable``) or none takes it
(UNAVAILABLE: refused, gone, leaving; what the forwarding queue holds when the last owner goes
is handed back at once, ``NO_OWNER``; what a dying owner held comes back ``lost``), so an owner
that dies costs its callers no error. The
owners' addresses come from the coordinator with the list of replicas; a forwarded request
counts in the owner's load reports, not in this replica's (its arrival rate is the local
scheduler's, which never sees it).
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from gateway.backends.backend import PodBackend
from gateway.backends.http_pod import HttpPodClient
from gateway.config import DynamicBatchingSettings, ModelSettings
from gateway.errors import Code, InferError
from gateway.observe.request import RequestInfo
from gateway.routing.pod_set import Pod, PodSet
from gateway.scheduler import Scheduler
from gateway.stats import ModelStats
from protos.infer import InferRequestBody
from protos.tensors import Tensor

__all__ = [
    "FORWARDED_HEADER",
    "FORWARD_SLOTS",
    "NO_OWNER",
    "Forwarder",
    "forward_settings",
    "peer_client",
]

FORWARD_SLOTS = 256  # requests in flight to one owner: enough that none waits for a slot
NO_OWNER = "no_owner"  # the reason of a request handed back unsent: serve it locally
FORWARDED_HEADER = "Gateway-Forwarded"  # on a request one replica sent on to another
FORWARDED_LINE = FORWARDED_HEADER.encode("ascii") + b": 1\r\n"


def forward_settings(settings: ModelSettings, owners: list[str]) -> ModelSettings:
    """The model's settings for its forwarding scheduler: the owners as static endpoints on
    the REST wire, the model by the gateway's own name, sent at once and never batched, the
    priority levels kept (so a request's priority is checked as it will be by the owner)."""
    batching = settings.dynamic_batching or DynamicBatchingSettings()
    return settings.model_copy(
        update={
            "endpoints": owners,
            "pod_model": settings.name,
            "backend_protocol": "http",
            "backend_tls": None,
            "discovery": None,
            "max_inflight_per_pod": FORWARD_SLOTS,
            "max_queue_wait_ms": 0,
            # an owner's answer includes its queue and batching wait: no per-try cut
            "per_try_timeout": settings.per_try_timeout.model_copy(update={"factor": 0}),
            "fair_share": False,
            "dynamic_batching": DynamicBatchingSettings(
                priority_levels=batching.priority_levels,
                default_priority_level=batching.default_priority_level,
                cost_model=False,
            ),
        }
    )


def peer_client(address: str, model: str) -> PodBackend:
    """A peer gateway's REST API: a request goes as it came (its parameters too), marked as
    forwarded so that the peer never sends it on again (no loop while replicas disagree)."""
    return HttpPodClient(address=address, model=model, headers=FORWARDED_LINE, parameters=True)


def _size(pod: Pod) -> None:
    pod.slots = FORWARD_SLOTS
    pod.timeline.devices = FORWARD_SLOTS  # a request goes as soon as it comes


class Forwarder:
    """One model's requests sent on to the replicas that own its pods."""

    def __init__(
        self, settings: ModelSettings, *, probe_interval_s: float, rng: random.Random | None
    ) -> None:
        self.settings = forward_settings(settings, [])
        self._given: tuple[ModelSettings, tuple[str, ...]] = (settings, ())
        self.forwarded_total = 0  # requests sent on (counted as they go)
        self.handed_back_total = 0  # of those, the ones no owner took
        self.pods = PodSet(
            model=settings.name,
            addresses=[],
            probe_interval_s=probe_interval_s,
            probe_timeout_s=settings.connect_timeout_ms / 1000,
            on_ready=_size,
            on_change=self._owners_changed,
            client_factory=peer_client,
        )
        self.scheduler = Scheduler(
            settings=self.settings, pods=self.pods, stats=ModelStats(), rng=rng
        )

    def _owners_changed(self) -> None:
        """Wake the scheduler; with no owner ready, what it holds goes back to the caller's
        replica (``NO_OWNER``: none of it ran) instead of waiting out its deadline. Looked at
        in the loop's next round: a try that failed re-queues its requests after this."""
        self.scheduler.wake()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing is queued
            asyncio.get_running_loop().call_soon(self._hand_back)

    def _hand_back(self) -> None:
        if not self.pods.ready_pods() and self.scheduler.queue.requests:
            error = "no gateway replica owning the pods is ready"
            self.scheduler.fail_queued(InferError(Code.UNAVAILABLE, error, reason=NO_OWNER))

    @property
    def usable(self) -> bool:
        """Some owner is listed and ready: requests go to the owners, not to the pods."""
        return bool(self.pods.ready_pods())

    def start(self) -> None:
        self.pods.start()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.pods.stop()

    def update(self, settings: ModelSettings, owners: tuple[str, ...]) -> None:
        """New model settings (live reload) or owners (from the coordinator)."""
        if (settings, owners) == self._given:
            return
        self._given = (settings, owners)
        new = forward_settings(settings, sorted(owners))
        if new == self.settings:
            return
        self.settings = new
        self.pods.set_addresses(list(new.endpoints))
        self.scheduler.update(new)

    async def submit(
        self,
        body: InferRequestBody,
        rows: int,
        deadline: float,
        version: str = "",
        info: RequestInfo | None = None,
    ) -> list[Tensor]:
        """Send a validated request to an owner and wait for its outputs (or its error).
        UNAVAILABLE (``NO_OWNER`` among them) means no owner took it: the caller serves it
        from its own pods instead (``handed_back``)."""
        self.forwarded_total += 1
        try:
            return await self.scheduler.submit(body, rows, deadline, version, info)
        except InferError as exc:
            if handed_back_error(exc):
                self.handed_back_total += 1
            raise


def handed_back_error(exc: InferError) -> bool:
    """No owner took the request (none was ready, none could be connected to) or the owner
    holding it went away (its connection broke, and no other owner was tried: the retry
    budget was spent): it may go to the pods this replica reaches itself, as a pod's lost
    try goes to another pod. An owner's own answer (a 503 among them) is the caller's."""
    return exc.reason == NO_OWNER or exc.unsent or exc.lost
