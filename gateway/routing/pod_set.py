"""The pods of one model: where they come from, whether each may take batches, and its load.

A pod is known from the config's static endpoints or from discovery (EndpointSlices). Whether
it may take a new batch depends on three things, kept apart:

- what Kubernetes says (``Pod.endpoint``: ready, serving, terminating; static ones are ready);
- the gateway's own probe (``Pod.probed``: v2 ModelReady), so a new pod gets no batch before
  it answers, and a pod that stops answering gets none after;
- outlier detection (``gateway.routing.outlier``): a pod failing in a row is ejected for a while.

The routing view (``ready_pods``) is an immutable tuple rebuilt when any of these changes:
ready pods that passed the probe and are not ejected; or, only when there is none, the
terminating pods that still serve (KEP-1669). A pod that leaves gets no new batch, finishes
what it has in flight (or its batches fail over), then its channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence

from gateway.backends.backend import ClientFactory, PodBackend, grpc_client
from gateway.batching.timeline import DeviceTimeline
from gateway.discovery.endpoints import Endpoint
from gateway.routing.outlier import OutlierDetector
from gateway.routing.retry_budget import RetryBudget
from gateway.routing.shares import SlotShares, Slotted
from gateway.tasks import cancel_and_wait

__all__ = ["ClientFactory", "Pod", "PodSet"]

log = logging.getLogger(__name__)
RETIRE_GRACE_S = 60.0  # the longest a removed pod's channel stays open for batches in flight


class Pod:
    """One pod of a model: its client, its state as Kubernetes and the gateway see it, and
    what it has in flight."""

    def __init__(self, client: PodBackend, endpoint: Endpoint | None = None) -> None:
        self.client = client
        self.endpoint = endpoint or Endpoint(client.address)
        self.probed = False  # the last v2 ModelReady said yes
        self.slots = 2  # in-flight batches allowed; set from the pod's devices (+1) once known
        self.timeline = DeviceTimeline()  # its devices: which batches run, when one frees
        self.in_flight = 0
        self.outstanding_rows = 0
        # Shared with other gateway replicas, its device time comes from its own statistics
        # (gateway.models.device_poller), not from timing its answers.
        self.timed_by_pod = False

    @property
    def address(self) -> str:
        return self.client.address

    @property
    def ready(self) -> bool:
        """Ready as both Kubernetes and the gateway's probe say (terminating: never)."""
        return self.probed and self.endpoint.ready


class PodSet:
    """A model's pods, probed with v2 ModelReady; wakes waiters when the routing view changes."""

    def __init__(
        self,
        *,
        model: str,
        addresses: list[str],
        probe_interval_s: float,
        probe_timeout_s: float,
        on_ready: Callable[[Pod], None],
        on_change: Callable[[], None] = lambda: None,
        client_factory: ClientFactory = grpc_client,
        outliers: OutlierDetector | None = None,
        retry_budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        probing: bool = True,
    ) -> None:
        self.model = model
        self.outliers = outliers or OutlierDetector()
        self.retry_budget = retry_budget or RetryBudget()
        self._interval = probe_interval_s
        self._timeout = probe_timeout_s
        self._on_ready = on_ready
        self._on_change = on_change
        self._client_factory = client_factory
        self._clock = clock
        self._probing = probing
        self._changed = asyncio.Event()
        self._pods: dict[str, Pod] = {}
        self._static: dict[str, Endpoint] = {a: Endpoint(a) for a in addresses}
        self._discovered: Mapping[str, Endpoint] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._ready: dict[str, Pod] = {}  # usable pods Kubernetes calls ready
        self._fallback: dict[str, Pod] = {}  # usable pods terminating but serving
        self._view: tuple[Pod, ...] = ()
        self._view_until = math.inf  # place the pods again then (an ejection ends)
        self._dirty = True
        self._started = False
        self._timer: asyncio.TimerHandle | None = None
        self.shares = SlotShares()  # with other gateway replicas on these pods
        # whether a pod also serves another model of this gateway (set by the gateway)
        self.co_served: Callable[[str], bool] = lambda address: False
        self._members: tuple[str, ...] | None = None  # pods Kubernetes calls ready, sorted
        for address, endpoint in self._static.items():
            self._pods[address] = Pod(client_factory(address, model), endpoint)

    @property
    def pods(self) -> list[Pod]:
        """Every pod known now (ready or not)."""
        return list(self._pods.values())

    def get(self, address: str) -> Pod | None:
        return self._pods.get(address)

    # -- the routing view --------------------------------------------------------------------

    def ready_pods(self) -> tuple[Pod, ...]:
        """The routing view: the pods a new batch may go to (see the module)."""
        if self._clock() >= self._view_until:  # an ejected pod is back: place them all again
            self._place_all()
        if self._dirty:
            self._view = tuple((self._ready or self._fallback).values())
            self._dirty = False
        return self._view

    def free_pods(self) -> list[Pod]:
        """Pods of the view with a free slot of this replica's (a pod on trial after an
        ejection: one batch)."""
        now = self._clock()
        view = self.ready_pods()
        limits = self.limits(view)
        out = []
        for pod in view:
            limit = limits.get(pod.address, 0) if limits is not None else pod.slots
            if self.outliers.on_trial(pod.address, now):
                limit = min(limit, 1)
            if pod.in_flight < limit:
                out.append(pod)
        return out

    def limits(self, view: Sequence[Slotted]) -> dict[str, int] | None:
        """This replica's slots of each pod of ``view`` when other replicas share them (see
        ``SlotShares.of_view``); None when they are all its own."""
        if not self.shares.active:
            return None
        return self.shares.of_view(view, self._member_pods())

    def shared_pods(self) -> list[Pod]:
        """The pods of the view that run others' batches too: whose slots other gateway
        replicas fill, or that serve another model of this gateway."""
        view = self.ready_pods()
        limits = self.limits(view)
        if limits is None:
            return [p for p in view if self.co_served(p.address)]
        return [p for p in view if limits.get(p.address, 0) < p.slots or self.co_served(p.address)]

    def forward_to(self) -> tuple[str, ...]:
        """The peer addresses of the replicas that own these pods, when this replica owns none
        and sends its requests on to them (``SlotShares.forward_to``); else ()."""
        if not self.shares.active:
            return ()
        return self.shares.forward_to(self._member_pods())

    def _member_pods(self) -> tuple[str, ...]:
        if self._members is None:  # laid out over the pods Kubernetes calls ready
            self._members = tuple(sorted(a for a, p in self._pods.items() if p.endpoint.ready))
        return self._members

    def set_peers(self, me: str, replicas: Sequence[str] | Mapping[str, str]) -> None:
        """The gateway replicas sharing these pods, as the coordinator lists them (with their
        peer addresses, when it knows them)."""
        if self.shares.set_replicas(me, replicas):
            n = len(self.shares.replicas)
            log.info("model %s: pods shared by %d gateway replica(s)", self.model, max(1, n))
            self._invalidate()

    def active_batches(self) -> int:
        return sum(p.in_flight for p in self._pods.values())

    def _place(self, pod: Pod) -> None:
        """Put one pod where its state says: ready, fallback (serving while terminating), or
        neither. Each change costs O(1), so churn among thousands of pods stays cheap."""
        address = pod.address
        self._ready.pop(address, None)
        self._fallback.pop(address, None)
        usable = self._pods.get(address) is pod and pod.probed
        if usable and not self.outliers.is_ejected(address, self._clock()):
            if pod.endpoint.ready:
                self._ready[address] = pod
            elif pod.endpoint.fallback:
                self._fallback[address] = pod
        self._dirty = True

    def _place_all(self) -> None:
        self._ready.clear()
        self._fallback.clear()
        for pod in self._pods.values():
            self._place(pod)
        self._view_until = self.outliers.next_return()
        self._dirty = True

    def _invalidate(self) -> None:
        self._dirty = True
        self.notify()

    # -- outcomes of calls (outlier detection) ----------------------------------------------

    def record_success(self, pod: Pod) -> None:
        self.outliers.success(pod.address, self._clock())

    def record_failure(self, pod: Pod) -> None:
        """A failure that is the pod's (never the gateway's own rejection)."""
        now = self._clock()
        if pod.address not in self._pods:
            return
        if self.outliers.failure(pod.address, now, len(self._pods)):
            log.warning(
                "pod %s for %s ejected (ejection %d)",
                pod.address,
                self.model,
                self.outliers.ejection_count(pod.address),
            )
            self._place(pod)
            self._view_until = self.outliers.next_return()
            self._arm_timer()
            self._invalidate()

    def _arm_timer(self) -> None:
        """Wake the scheduler when the next ejected pod comes back on trial."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        back = self.outliers.next_return()
        if back < math.inf:
            with contextlib.suppress(RuntimeError):  # no running loop (pure tests)
                loop = asyncio.get_running_loop()
                delay = max(0.0, back - self._clock())
                self._timer = loop.call_later(delay, self._returned)

    def _returned(self) -> None:
        self._timer = None
        self._place_all()
        self._arm_timer()
        self._invalidate()

    # -- membership --------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        for pod in self._pods.values():
            self._start_probe(pod)

    async def stop(self) -> None:
        self._started = False
        if self._timer is not None:
            self._timer.cancel()
        for task in [*self._tasks.values(), *self._retiring]:
            await cancel_and_wait(task)
        await asyncio.gather(*(p.client.close() for p in self._pods.values()))

    def set_addresses(self, addresses: list[str]) -> tuple[list[str], list[str]]:
        """The config's static endpoints (always ready as far as Kubernetes goes). Returns the
        addresses (added, removed)."""
        self._static = {a: Endpoint(a) for a in addresses}
        return self._sync(None)

    def set_endpoints(
        self, endpoints: Mapping[str, Endpoint], changed: Collection[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """Discovery's view (an immutable snapshot by address). ``changed`` names the addresses
        that changed since the last call (None: compare them all). Returns (added, removed)."""
        self._discovered = endpoints
        return self._sync(changed)

    def _wanted(self, address: str) -> Endpoint | None:
        return self._static.get(address) or self._discovered.get(address)

    def _sync(self, changed: Collection[str] | None) -> tuple[list[str], list[str]]:
        self._members = None
        if changed is None:
            changed = self._pods.keys() | self._static.keys() | self._discovered.keys()
        added: list[str] = []
        removed: list[str] = []
        for address in changed:
            wanted = self._wanted(address)
            pod = self._pods.get(address)
            if wanted is None:
                if pod is not None:
                    self._remove(pod)
                    removed.append(address)
            elif pod is None:
                pod = self._pods[address] = Pod(self._client_factory(address, self.model), wanted)
                added.append(address)
                if self._started:
                    self._start_probe(pod)
            elif pod.endpoint != wanted:
                pod.endpoint = wanted
                self._place(pod)
        if changed:
            self._invalidate()
        return added, removed

    def _remove(self, pod: Pod) -> None:
        del self._pods[pod.address]
        self._place(pod)  # out of the view
        self.outliers.forget(pod.address)
        task = self._tasks.pop(pod.address, None)
        if task is not None:
            task.cancel()
        if pod.probed:
            log.info("pod %s for %s removed", pod.address, self.model)
        pod.probed = False
        retire = asyncio.get_running_loop().create_task(self._retire(pod))
        self._retiring.add(retire)
        retire.add_done_callback(self._retiring.discard)

    async def _retire(self, pod: Pod, grace_s: float = RETIRE_GRACE_S) -> None:
        """Close a removed pod's channel once its batches in flight are done (bounded)."""
        deadline = asyncio.get_running_loop().time() + grace_s
        while pod.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await pod.client.close()

    # -- probing -----------------------------------------------------------------------------

    def set_ready(self, pod: Pod, ready: bool) -> None:
        """Record the gateway's own verdict on a pod (a probe, or a call it could not make)."""
        if ready == pod.probed or pod.address not in self._pods:
            return
        pod.probed = ready
        self._place(pod)
        log.info(
            "pod %s for %s is %s", pod.address, pod.client.model, "ready" if ready else "not ready"
        )
        if ready:
            self._on_ready(pod)
        self._invalidate()

    def notify(self) -> None:
        """Wake everything waiting in changed()."""
        self._on_change()
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Wait for the next change of the routing view."""
        await self._changed.wait()

    async def probe(self, pod: Pod) -> None:
        sent = self._clock()
        ready = await pod.client.model_ready(self._timeout)
        if ready:  # a quick answer: the round trip the scheduler times its sends by
            pod.timeline.rtt.observe(self._clock() - sent)
        self.set_ready(pod, ready)

    def _start_probe(self, pod: Pod) -> None:
        if self._probing:
            self._tasks[pod.address] = asyncio.get_running_loop().create_task(self._probe_loop(pod))
        else:
            self.set_ready(pod, True)

    async def _probe_loop(self, pod: Pod) -> None:
        watch = asyncio.get_running_loop().create_task(self._watch_connection(pod))
        try:
            while True:
                await self.probe(pod)
                # A pod that is not ready is probed more often, so it is used soon after it is.
                await asyncio.sleep(self._interval if pod.probed else min(self._interval, 0.2))
        finally:
            await cancel_and_wait(watch)

    async def _watch_connection(self, pod: Pod) -> None:
        """A ready pod whose connection was lost and made anew is described again, even when
        it came back between two probes (a restart with a new signature)."""
        while True:
            await pod.client.reconnected()
            if pod.probed and pod.address in self._pods:
                log.info("pod %s for %s reconnected: describing it again", pod.address, self.model)
                self._on_ready(pod)
