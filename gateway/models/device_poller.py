"""The device time of the pods this replica shares, read from the pods' own statistics.

A pod whose slots are divided with other gateway replicas (``gateway.routing.shares``) runs
their batches too; timing this replica's batches by their answers would count the wait behind
theirs as device time. So every ``interval_s`` each such pod is asked for its
``ModelStatistics``, and the batches it ran since, by size, feed the cost model instead
(``gateway.batching.device_stats``); the pod is marked ``timed_by_pod`` so that its answers no
longer do. A pod that keeps no statistics (MLServer) stays timed by its answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.batching.device_stats import BatchStatsDelta, batch_stats
from gateway.routing.pod_set import Pod, PodSet

__all__ = ["DeviceTimePoller"]

log = logging.getLogger(__name__)

_MAX_PER_SIZE = 64  # samples per batch size and reading (a bound on one reading's work)


class DeviceTimePoller:
    """Polls the shared pods of one model; ``observe(rows, seconds)`` is the cost model's."""

    def __init__(
        self,
        pods: PodSet,
        observe: Callable[[int, float], None],
        *,
        interval_s: float = 0.25,
        timeout_s: float = 1.0,
    ) -> None:
        self._pods = pods
        self._observe = observe
        self._interval = interval_s
        self._timeout = timeout_s
        self._deltas: dict[str, BatchStatsDelta] = {}
        self._without: set[str] = set()  # pods that keep no statistics

    async def poll_once(self) -> None:
        shared = {p.address: p for p in self._pods.shared_pods()}
        for pod in self._pods.pods:
            if pod.address not in shared:
                pod.timed_by_pod = False
                self._deltas.pop(pod.address, None)
        for pod in shared.values():
            if pod.address not in self._without:
                await self._read(pod)

    async def _read(self, pod: Pod) -> None:
        try:
            stats = await pod.client.model_statistics(self._timeout)
        except Exception as exc:  # the pod's own trouble shows on its calls; keep what we had
            log.debug("no statistics from pod %s: %s", pod.address, exc)
            return
        if stats is None:
            log.info("pod %s keeps no statistics: timed by its answers", pod.address)
            self._without.add(pod.address)
            pod.timed_by_pod = False
            return
        delta = self._deltas.setdefault(pod.address, BatchStatsDelta())
        for sample in delta.update(batch_stats(stats)):
            for _ in range(min(sample.batches, _MAX_PER_SIZE)):  # one sample per batch run,
                self._observe(sample.rows, sample.mean_s)  # as answers would have given
        pod.timed_by_pod = True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.poll_once()
