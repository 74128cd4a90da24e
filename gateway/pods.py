"""The pods of one model: their clients, readiness (kept current by probing) and load."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gateway.backend import PodClient

__all__ = ["Pod", "PodSet"]

log = logging.getLogger(__name__)


class Pod:
    """One pod of a model: its client, whether it is ready, and what it has in flight."""

    def __init__(self, client: PodClient) -> None:
        self.client = client
        self.ready = False
        self.slots = 2  # in-flight batches allowed; set from the pod's devices once known
        self.in_flight = 0
        self.outstanding_rows = 0

    @property
    def address(self) -> str:
        return self.client.address


class PodSet:
    """A model's pods, probed with v2 ModelReady; wakes waiters when one becomes ready."""

    def __init__(
        self,
        *,
        model: str,
        addresses: list[str],
        probe_interval_s: float,
        probe_timeout_s: float,
        on_ready: Callable[[Pod], None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.model = model
        self.pods = [Pod(PodClient(address=a, model=model)) for a in addresses]
        self._interval = probe_interval_s
        self._timeout = probe_timeout_s
        self._on_ready = on_ready
        self._on_change = on_change
        self._changed = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    def ready_pods(self) -> list[Pod]:
        return [p for p in self.pods if p.ready]

    def start(self) -> None:
        for pod in self.pods:
            self._tasks[pod.address] = asyncio.create_task(self._probe_loop(pod))

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._retiring]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(p.client.close() for p in self.pods))

    def set_addresses(self, addresses: list[str]) -> tuple[list[str], list[str]]:
        """Change the pod set: new pods are probed before use; removed ones get no new batch,
        finish what they have in flight, then close. Returns (added, removed)."""
        current = {p.address: p for p in self.pods}
        added = [a for a in addresses if a not in current]
        removed = [a for a in current if a not in addresses]
        for address in removed:
            pod = current[address]
            self.set_ready(pod, False)
            self._tasks.pop(address).cancel()
            task = asyncio.create_task(self._retire(pod))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        fresh = [Pod(PodClient(address=a, model=self.model)) for a in added]
        self.pods = [current[a] if a in current else fresh[added.index(a)] for a in addresses]
        for pod in fresh:
            self._tasks[pod.address] = asyncio.create_task(self._probe_loop(pod))
        if removed:
            self.notify()
        return added, removed

    async def _retire(self, pod: Pod, grace_s: float = 60.0) -> None:
        """Close a removed pod's channel once its batches in flight are done (bounded)."""
        deadline = asyncio.get_running_loop().time() + grace_s
        while pod.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await pod.client.close()

    def set_ready(self, pod: Pod, ready: bool) -> None:
        """Record a pod's readiness (from a probe, or a failed call) and wake waiters."""
        if ready == pod.ready:
            return
        pod.ready = ready
        log.info(
            "pod %s for %s is %s", pod.address, pod.client.model, "ready" if ready else "not ready"
        )
        if ready:
            self._on_ready(pod)
        self.notify()

    def notify(self) -> None:
        """Wake everything waiting in changed()."""
        self._on_change()
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Wait for the next readiness change of any pod."""
        await self._changed.wait()

    async def probe(self, pod: Pod) -> None:
        self.set_ready(pod, await pod.client.model_ready(self._timeout))

    async def _probe_loop(self, pod: Pod) -> None:
        while True:
            await self.probe(pod)
            # A pod that is not ready is probed more often, so it is used soon after it is.
            await asyncio.sleep(self._interval if pod.ready else min(self._interval, 0.2))
