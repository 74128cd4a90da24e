"""Discovery against the Kubernetes API double: the real kubernetes-asyncio client over HTTP on
127.0.0.1, through a kubeconfig, feeding a model's PodSet.

Each test drives the API through a fault, then asserts that the endpoint view equals what the
API holds, and that no pick of the router ever went to an endpoint the view had dropped.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, DiscoveryV1Api

from gateway.backoff import Backoff
from gateway.discovery.watcher import SliceWatcher
from gateway.routing.pick import pick_pod
from gateway.routing.pod_set import PodSet
from loadtest.kube_api.objects import (
    ENDPOINTSLICES,
    SliceEndpoint,
    endpoint_slice,
)
from loadtest.kube_api.server import KubeApiServer
from tests.fakes.pod_client import FakePods

NS, SERVICE = "default", "sim"
SERVICE_LABEL = "kubernetes.io/service-name"
CONVERGE_S = 10.0  # an upper bound to fail on, never a measured time


def put_slice(api: KubeApiServer, name: str, port: int, *endpoints: SliceEndpoint) -> None:
    obj = endpoint_slice(name, SERVICE, list(endpoints), port=port)
    key = (ENDPOINTSLICES, NS, name)
    if key in api.store.objects:
        api.store.replace(ENDPOINTSLICES, NS, obj)
    else:
        api.store.create(ENDPOINTSLICES, NS, obj)


def api_view(api: KubeApiServer) -> tuple[set[str], set[str]]:
    """(every endpoint address, the routable ones), read straight from the API's objects."""
    every: set[str] = set()
    ready: set[str] = set()
    draining: set[str] = set()
    for (res, _, _), obj in api.store.objects.items():
        if res != ENDPOINTSLICES or obj["metadata"]["labels"][SERVICE_LABEL] != SERVICE:
            continue
        port = obj["ports"][0]["port"]
        for ep in obj["endpoints"] or []:
            address = f"{ep['addresses'][0]}:{port}"
            every.add(address)
            c = ep.get("conditions", {})
            if c.get("ready", True) and not c.get("terminating", False):
                ready.add(address)
            elif c.get("serving") and c.get("terminating"):
                draining.add(address)
    return every, ready or draining


class Harness:
    """A watcher feeding a PodSet, and a router picking from it all along."""

    def __init__(self, api: KubeApiServer, client: ApiClient, **kwargs: Any) -> None:
        self.api = api
        self.pods = PodSet(
            model="sim",
            addresses=[],
            probe_interval_s=1.0,
            probe_timeout_s=1.0,
            on_ready=lambda pod: None,
            client_factory=FakePods(),
            probing=False,
        )
        self.watcher = SliceWatcher(
            api=DiscoveryV1Api(client),
            namespace=NS,
            service=SERVICE,
            port_name="grpc",
            publish=lambda snap, changed: self.pods.set_endpoints(snap.endpoints, changed),
            backoff=Backoff(base_s=0.02, cap_s=0.2, rng=random.Random(1)),
            **kwargs,
        )
        self.stale: list[str] = []
        self.picks = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Harness:
        self.pods.start()
        self._tasks = [
            asyncio.create_task(self.watcher.run()),
            asyncio.create_task(self._route()),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pods.stop()

    async def _route(self) -> None:
        """Pick a pod as the scheduler would, and check it against the watcher's latest view."""
        rng = random.Random(2)
        while True:
            pod = pick_pod(self.pods.free_pods(), rng)
            if pod is not None:
                self.picks += 1
                snap = self.watcher.snapshot.endpoints
                endpoint = snap.get(pod.address)
                any_ready = any(e.ready for e in snap.values())
                if endpoint is None or (any_ready and not endpoint.ready):
                    self.stale.append(pod.address)
            await asyncio.sleep(0.001)

    async def converged(self) -> None:
        """Wait (bounded) until the view equals the API's; then check every pick was fresh."""
        loop = asyncio.get_running_loop()
        end = loop.time() + CONVERGE_S
        every, routable = api_view(self.api)
        while loop.time() < end:
            seen = set(self.watcher.snapshot.endpoints)
            view = {p.address for p in self.pods.ready_pods()}
            if seen == every and view == routable and {p.address for p in self.pods.pods} == every:
                break
            await asyncio.sleep(0.01)
        assert set(self.watcher.snapshot.endpoints) == every
        assert {p.address for p in self.pods.ready_pods()} == routable
        picks = self.picks
        while self.picks < picks + 20 and routable:
            await asyncio.sleep(0.005)
        assert self.stale == []


def seed(api: KubeApiServer) -> None:
    put_slice(api, "sim-a", 9001, SliceEndpoint("127.0.0.1", pod="a"))
    put_slice(api, "sim-b", 9002, SliceEndpoint("127.0.0.1", ready=None, pod="b"))  # nil: ready
    put_slice(api, "sim-c", 9003, SliceEndpoint("127.0.0.1", pod="c"))
    api.store.create(
        ENDPOINTSLICES,
        NS,
        endpoint_slice("other", "other-svc", [SliceEndpoint("127.0.0.1")], port=9999),
    )


@pytest.fixture
async def watching(api: KubeApiServer, client: ApiClient) -> AsyncIterator[Harness]:
    """The seeded API, watched: a Harness whose view has converged on it."""
    seed(api)
    async with Harness(api, client) as h:
        await h.converged()
        yield h


# A recorded stream of changes, applied back to back while the watch is open.
RECORDED: list[tuple[str, str, int, list[SliceEndpoint]]] = [
    ("put", "sim-d", 9004, [SliceEndpoint("127.0.0.1", ready=False)]),  # starting up
    ("put", "sim-d", 9004, [SliceEndpoint("127.0.0.1")]),  # now ready
    ("put", "sim-a", 9001, [SliceEndpoint("127.0.0.1", False, True, True)]),  # draining
    ("delete", "sim-c", 0, []),
    ("put", "sim-e", 9005, []),  # a slice with no endpoints (endpoints: null)
    ("put", "sim-a", 9001, [SliceEndpoint("127.0.0.1", False, False, True)]),  # stopped serving
    ("delete", "sim-a", 0, []),
]


def play(api: KubeApiServer, records: list[tuple[str, str, int, list[SliceEndpoint]]]) -> None:
    for op, name, port, endpoints in records:
        if op == "put":
            put_slice(api, name, port, *endpoints)
        else:
            api.store.delete(ENDPOINTSLICES, NS, name)


async def replay(api: KubeApiServer, h: Harness, split: int) -> None:
    """Play the recording in two parts, ``[:split]`` and ``[split:]``, converging after each."""
    for part in (RECORDED[:split], RECORDED[split:]):
        play(api, part)
        await h.converged()


async def test_a_recorded_stream_with_bookmarks_ends_in_the_apis_endpoint_set(
    api: KubeApiServer, client: ApiClient
) -> None:
    seed(api)
    api.faults.bookmark_interval_s = 0.02
    async with Harness(api, client) as h:
        await h.converged()
        for i in range(len(RECORDED)):
            play(api, RECORDED[i : i + 1])
            await h.converged()
        await asyncio.sleep(0.1)  # let a bookmark or two arrive
        assert h.watcher.stats.bookmarks > 0
        assert h.watcher.store.resource_version == str(api.store.rv)
        assert h.watcher.stats.lists == 1 and h.watcher.stats.failures == 0
        assert h.picks > 0


async def test_only_serving_terminating_endpoints_are_used_when_none_is_ready(
    api: KubeApiServer, client: ApiClient
) -> None:
    put_slice(api, "sim-a", 9001, SliceEndpoint("127.0.0.1", False, True, True))
    put_slice(api, "sim-b", 9002, SliceEndpoint("127.0.0.1", False, False, True))
    async with Harness(api, client) as h:
        await h.converged()
        assert [p.address for p in h.pods.ready_pods()] == ["127.0.0.1:9001"]
        put_slice(api, "sim-c", 9003, SliceEndpoint("127.0.0.1"))
        await h.converged()
        assert [p.address for p in h.pods.ready_pods()] == ["127.0.0.1:9003"]


async def test_410_twice_in_a_row_relists_and_ends_in_the_apis_set(
    api: KubeApiServer, watching: Harness
) -> None:
    api.faults.expire_watches = 2
    api.end_watches()
    await replay(api, watching, 3)
    assert watching.watcher.stats.expired == 2
    assert watching.watcher.stats.lists == 3


async def test_a_history_compacted_while_away_gives_410_and_a_relist(
    api: KubeApiServer, watching: Harness
) -> None:
    await api.stop()
    play(api, RECORDED[:2])
    api.store.compact()  # the version the watch resumes from is gone
    await api.start()
    await watching.converged()
    play(api, RECORDED[2:])
    await watching.converged()
    assert watching.watcher.stats.expired >= 1 and watching.watcher.stats.lists >= 2


async def test_a_cut_stream_is_resumed_from_its_version(
    api: KubeApiServer, watching: Harness
) -> None:
    api.faults.cut_watches = 2
    api.end_watches()
    await replay(api, watching, 4)
    assert watching.watcher.stats.failures == 2
    assert watching.watcher.stats.lists == 1  # resumed from the version, no re-list needed


async def test_a_silent_stream_is_restarted_by_the_watchdog(
    api: KubeApiServer, client: ApiClient
) -> None:
    seed(api)
    api.faults.bookmark_interval_s = 0.05  # a healthy stream is never silent this long
    async with Harness(api, client, silence_timeout_s=0.4) as h:
        await h.converged()
        api.faults.silent_watches = 1
        api.end_watches()
        play(api, RECORDED)
        await h.converged()
        assert h.watcher.stats.failures == 1


async def test_the_api_server_down_then_back(api: KubeApiServer, watching: Harness) -> None:
    before = {p.address for p in watching.pods.ready_pods()}
    await api.stop()
    play(api, RECORDED)  # changes the gateway cannot see while the API is down
    await asyncio.sleep(0.3)
    assert {p.address for p in watching.pods.ready_pods()} == before  # the last view holds
    await api.start()  # the same port
    await watching.converged()
    assert watching.watcher.stats.failures >= 2
