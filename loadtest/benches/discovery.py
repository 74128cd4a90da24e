"""What discovery costs: CPU to carry endpoint churn, and the time from an event to routing.

The API server double runs in a process of its own, holding ``endpoints``
endpoints in slices of ``slice_size``, and changes ``churn`` endpoints a second (one endpoint
flips between ready and not ready, or is replaced by a new address: a MODIFIED event of its
slice). The discovery side runs in the main thread, exactly as in the gateway: the
kubernetes-asyncio client through a kubeconfig, the watcher, the store and its snapshots, and
a model's PodSet fed with each snapshot (its routing view rebuilt as the scheduler reads it;
pod clients are stubs and probes are off, so only discovery is measured).

Figures: the discovery process's CPU time per second of churn and per endpoint change (the
double's work is in the other process), and the delay from the double's write of a change to
the PodSet having it (``perf_counter`` is the system's monotonic clock, the same in both).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from kubernetes_asyncio.client import DiscoveryV1Api

from gateway.backends.pod_client import PodClient
from gateway.backoff import Backoff
from gateway.discovery.client import api_client
from gateway.discovery.store import EndpointSnapshot, SliceStore
from gateway.discovery.watcher import SliceWatcher
from gateway.routing.pod_set import PodSet
from loadtest.kube_api.objects import (
    ENDPOINTSLICES,
    SliceEndpoint,
    endpoint_slice,
    write_kubeconfig,
)
from loadtest.kube_api.server import KubeApiServer

__all__ = ["DiscoveryBenchConfig", "DiscoveryFigures", "discovery_doc", "run_discovery_bench"]

NAMESPACE, SERVICE, PORT = "default", "bench", 8001
WRITTEN = "bench.example/written-at"  # perf_counter when the double wrote the slice


@dataclass(frozen=True, slots=True)
class DiscoveryBenchConfig:
    endpoints: int = 2000  # in the Service, over every slice
    slice_size: int = 100  # endpoints per EndpointSlice
    churn_per_s: float = 100.0  # endpoint changes per second
    duration_s: float = 10.0  # of churn
    seed: int = 1


@dataclass(frozen=True, slots=True)
class DiscoveryFigures:
    endpoints: int
    changes: int
    seconds: float
    cpu_s: float
    list_s: float
    latency_ms: list[float]

    @property
    def cpu_fraction(self) -> float:
        return self.cpu_s / self.seconds

    @property
    def cpu_us_per_change(self) -> float:
        return self.cpu_s / max(1, self.changes) * 1e6

    def latency(self, q: float) -> float:
        values = sorted(self.latency_ms)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values (latencies summarised, not listed)."""
        known = bool(self.latency_ms)
        return {
            "endpoints": self.endpoints,
            "changes": self.changes,
            "seconds": round(self.seconds, 3),
            "changes_per_s": round(self.changes / self.seconds, 1) if self.seconds else None,
            "cpu_fraction": round(self.cpu_fraction, 5) if self.seconds else None,
            "cpu_us_per_change": round(self.cpu_us_per_change, 1),
            "list_ms": round(self.list_s * 1e3, 2),
            "event_to_routing_ms": {
                "count": len(self.latency_ms),
                "p50": round(self.latency(0.5), 3) if known else None,
                "p99": round(self.latency(0.99), 3) if known else None,
                "max": round(max(self.latency_ms), 3) if known else None,
            },
        }


def discovery_doc(config: DiscoveryBenchConfig, figures: DiscoveryFigures) -> dict[str, Any]:
    """The JSON report of a run."""
    return {"benchmark": "discovery", "config": asdict(config), **figures.as_dict()}


class _Stub:
    def __init__(self, address: str, model: str) -> None:
        self.address = address
        self.model = model

    async def model_ready(self, timeout_s: float) -> bool:
        return True

    async def close(self) -> None:
        pass


class _Api:
    """The double and its churn (run in a child process: its CPU is not the gateway's)."""

    def __init__(self, config: DiscoveryBenchConfig) -> None:
        self.config = config
        self.server = KubeApiServer()
        self.changes = 0
        self._rng = random.Random(config.seed)
        self._slices: list[list[SliceEndpoint]] = []
        self._next_ip = 0

    def _ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"

    async def start(self) -> None:
        c = self.config
        for i in range(0, c.endpoints, c.slice_size):
            eps = [SliceEndpoint(self._ip()) for _ in range(min(c.slice_size, c.endpoints - i))]
            self._slices.append(eps)
            self.server.store.create(ENDPOINTSLICES, NAMESPACE, self._object(len(self._slices) - 1))
        await self.server.start()

    def _object(self, index: int) -> dict[str, Any]:
        obj = endpoint_slice(f"{SERVICE}-{index}", SERVICE, self._slices[index], port=PORT)
        obj["metadata"]["annotations"] = {WRITTEN: repr(time.perf_counter())}
        return obj

    def _change(self) -> None:
        index = self._rng.randrange(len(self._slices))
        eps = self._slices[index]
        j = self._rng.randrange(len(eps))
        if self._rng.random() < 0.5:
            eps[j] = SliceEndpoint(eps[j].ip, ready=not eps[j].ready)
        else:
            eps[j] = SliceEndpoint(self._ip())  # a pod replaced by a new one
        self.server.store.replace(ENDPOINTSLICES, NAMESPACE, self._object(index))
        self.changes += 1

    async def churn(self, duration_s: float) -> int:
        period = 1.0 / self.config.churn_per_s
        start = time.perf_counter()
        n = 0
        while (now := time.perf_counter()) - start < duration_s:
            due = start + n * period
            if now >= due:
                self._change()
                n += 1
            else:
                await asyncio.sleep(due - now)
        return self.changes


def _api_process(config: DiscoveryBenchConfig, conn: Connection) -> None:
    """The child: serve the double; churn when told; report how many changes were made."""

    async def serve() -> None:
        api = _Api(config)
        await api.start()
        conn.send(api.server.port)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command is None:
                break
            conn.send(await api.churn(float(command)))
        await api.server.stop()

    asyncio.run(serve())


class _TimedStore(SliceStore):
    """The watcher's store, noting when each slice it applies was written by the double."""

    def __init__(self, port_name: str | None) -> None:
        super().__init__(port_name)
        self.pending: list[float] = []

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        written = ((obj.get("metadata") or {}).get("annotations") or {}).get(WRITTEN)
        if written:
            self.pending.append(float(written))
        super().apply(kind, obj)


async def _measure(config: DiscoveryBenchConfig, port: int, conn: Connection) -> DiscoveryFigures:
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", f"http://127.0.0.1:{port}")
        client = await api_client(str(kubeconfig))
    pods = PodSet(
        model="bench",
        addresses=[],
        probe_interval_s=1.0,
        probe_timeout_s=1.0,
        on_ready=lambda pod: None,
        client_factory=lambda a, m: cast(PodClient, _Stub(a, m)),
        probing=False,
    )
    pods.start()
    latencies: list[float] = []
    synced = asyncio.Event()
    store = _TimedStore(None)

    def publish(snapshot: EndpointSnapshot, changed: frozenset[str]) -> None:
        pods.set_endpoints(snapshot.endpoints, changed)
        pods.ready_pods()  # the view the scheduler reads next
        now = time.perf_counter()
        latencies.extend((now - t) * 1e3 for t in store.pending)
        store.pending.clear()
        synced.set()

    watcher = SliceWatcher(
        api=DiscoveryV1Api(client),
        namespace=NAMESPACE,
        service=SERVICE,
        port_name=None,
        publish=publish,
        backoff=Backoff(rng=random.Random(config.seed)),
    )
    watcher.store = store
    t0 = time.perf_counter()
    task = asyncio.create_task(watcher.run())
    await synced.wait()
    list_s = time.perf_counter() - t0
    assert len(pods.pods) == config.endpoints, len(pods.pods)
    await asyncio.sleep(0.2)  # the watch is open
    latencies.clear()
    loop = asyncio.get_running_loop()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    conn.send(config.duration_s)
    changes = await loop.run_in_executor(None, conn.recv)
    await asyncio.sleep(0.1)  # the last events arrive
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pods.stop()
    await client.close()
    return DiscoveryFigures(
        endpoints=config.endpoints,
        changes=int(changes),
        seconds=wall,
        cpu_s=cpu,
        list_s=list_s,
        latency_ms=latencies,
    )


def run_discovery_bench(config: DiscoveryBenchConfig) -> DiscoveryFigures:
    """Run the benchmark and print its figures."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_api_process, args=(config, child), daemon=True)
    proc.start()
    try:
        port = int(parent.recv())
        figures = asyncio.run(_measure(config, port, parent))
    finally:
        parent.send(None)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    f = figures
    print(
        f"discovery: {f.endpoints} endpoints in slices of {config.slice_size}, "
        f"{f.changes} endpoint changes in {f.seconds:.1f} s ({f.changes / f.seconds:.0f}/s)"
    )
    print(f"  initial list to routing view: {f.list_s * 1e3:.1f} ms")
    print(
        f"  discovery CPU: {f.cpu_fraction * 100:.2f} % of one core, "
        f"{f.cpu_us_per_change:.0f} µs per endpoint change"
    )
    print(
        f"  event to routing view: p50 {f.latency(0.5):.2f} ms, p99 {f.latency(0.99):.2f} ms, "
        f"max {max(f.latency_ms, default=float('nan')):.2f} ms ({len(f.latency_ms)} events)"
    )
    return figures
