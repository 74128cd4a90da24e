"""The API server double as kubernetes-asyncio sees it: its own Watch helper, the Deployment
scale subresource with 409 conflicts, Leases and Events. Real client, HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import (
    ApiClient,
    ApisApi,
    AppsV1Api,
    CoordinationV1Api,
    CoreApi,
    CoreV1Api,
    DiscoveryV1Api,
    VersionApi,
)
from kubernetes_asyncio.client.exceptions import ApiException

from loadtest.kube_api.objects import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    SliceEndpoint,
    deployment,
    endpoint_slice,
    set_replicas,
    spec_replicas,
)
from loadtest.kube_api.server import KubeApiServer
from loadtest.kube_api.store import ObjectStore

MERGE = "application/merge-patch+json"


async def watch_all(v1: DiscoveryV1Api, resource_version: str, timeout_s: int) -> None:
    """Read a watch of the slices from ``resource_version`` to its end, or to what it raises."""
    async with watch.Watch() as w:
        async for _ in w.stream(
            v1.list_namespaced_endpoint_slice,
            "default",
            resource_version=resource_version,
            timeout_seconds=timeout_s,
        ):
            pass


def add_slice(store: ObjectStore, name: str) -> None:
    store.create(
        ENDPOINTSLICES,
        "default",
        endpoint_slice(name, "sim", [SliceEndpoint("127.0.0.1")], port=9001),
    )


def add_deployment(store: ObjectStore) -> None:
    store.create(DEPLOYMENTS, "default", deployment("sim", 2, {"app": "sim"}))


async def test_list_and_watch_speak_the_wire_protocol(
    api: KubeApiServer, client: ApiClient
) -> None:
    add_slice(api.store, "a")
    v1 = DiscoveryV1Api(client)
    listed = await v1.list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=sim"
    )
    assert [s.metadata.name for s in listed.items] == ["a"]
    assert listed.items[0].endpoints[0].conditions.ready is True
    version = listed.metadata.resource_version

    async def later() -> None:
        await asyncio.sleep(0.05)
        add_slice(api.store, "b")
        api.store.delete(ENDPOINTSLICES, "default", "a")

    task = asyncio.create_task(later())
    seen = []
    async with watch.Watch() as w:
        async for event in w.stream(
            v1.list_namespaced_endpoint_slice,
            "default",
            resource_version=version,
            timeout_seconds=1,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                break
    await task
    assert seen == [("ADDED", "b"), ("DELETED", "a")]


async def test_410_as_an_error_event_is_raised_by_the_watch_helper(
    api: KubeApiServer, client: ApiClient
) -> None:
    add_slice(api.store, "a")
    add_slice(api.store, "b")
    api.store.compact()  # version 1 is older than the history kept
    v1 = DiscoveryV1Api(client)
    with pytest.raises(ApiException) as info:
        await watch_all(v1, "1", timeout_s=1)
    assert info.value.status == 410 and "Expired" in str(info.value.reason)


async def test_a_cut_stream_raises_a_payload_error(api: KubeApiServer, client: ApiClient) -> None:
    api.faults.cut_watches = 1
    v1 = DiscoveryV1Api(client)
    with pytest.raises(aiohttp.ClientPayloadError):
        await watch_all(v1, "0", timeout_s=5)


async def test_scale_subresource_patches_and_conflicts(
    api: KubeApiServer, client: ApiClient
) -> None:
    add_deployment(api.store)
    apps = AppsV1Api(client)
    scale = await apps.read_namespaced_deployment_scale("sim", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=sim"
    patched = await apps.patch_namespaced_deployment_scale(
        "sim", "default", {"spec": {"replicas": 5}}, _content_type=MERGE
    )
    assert patched.spec.replicas == 5
    stale = {
        "metadata": {"name": "sim", "resourceVersion": scale.metadata.resource_version},
        "spec": {"replicas": 3},
    }
    with pytest.raises(ApiException) as info:
        await apps.replace_namespaced_deployment_scale("sim", "default", stale)
    assert info.value.status == 409
    zero = await apps.patch_namespaced_deployment_scale(
        "sim", "default", {"spec": {"replicas": 0}}, _content_type=MERGE
    )
    assert zero.spec.replicas is None  # omitted at zero, as the real server does
    assert (await apps.read_namespaced_deployment("sim", "default")).spec.replicas == 0


async def test_leases_conflict_on_a_stale_version_and_events_are_created(
    api: KubeApiServer, client: ApiClient
) -> None:
    coordination = CoordinationV1Api(client)
    lease = await coordination.create_namespaced_lease(
        "default",
        {"metadata": {"name": "autoscaler"}, "spec": {"holderIdentity": "a"}},
    )
    lease.spec.holder_identity = "b"
    renewed = await coordination.replace_namespaced_lease("autoscaler", "default", lease)
    assert renewed.spec.holder_identity == "b"
    lease.spec.holder_identity = "c"  # still the old resourceVersion
    with pytest.raises(ApiException) as info:
        await coordination.replace_namespaced_lease("autoscaler", "default", lease)
    assert info.value.status == 409
    core = CoreV1Api(client)
    await core.create_namespaced_event(
        "default",
        {
            "metadata": {"generateName": "sim."},
            "involvedObject": {"kind": "Deployment", "name": "sim"},
            "reason": "ScaledUp",
            "message": "2 -> 5",
        },
    )
    events = await core.list_namespaced_event("default")
    assert [e.reason for e in events.items] == ["ScaledUp"]


async def test_an_injected_503_surfaces_as_an_api_exception(
    api: KubeApiServer, client: ApiClient
) -> None:
    api.faults.fail_requests = 1
    with pytest.raises(ApiException) as info:
        await DiscoveryV1Api(client).list_namespaced_endpoint_slice("default")
    assert info.value.status == 503


async def test_an_injected_error_carries_its_headers_and_a_racing_write_makes_a_patch_stale(
    api: KubeApiServer, client: ApiClient
) -> None:
    add_deployment(api.store)
    apps = AppsV1Api(client)
    api.faults.fail("GET", "deployments", 429, subresource="scale", headers={"Retry-After": "3"})
    with pytest.raises(ApiException) as info:
        await apps.read_namespaced_deployment_scale("sim", "default")
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "3"
    scale = await apps.read_namespaced_deployment_scale("sim", "default")
    api.faults.race(
        "PATCH",
        "deployments",
        lambda: set_replicas(api.store, "default", "sim", 4),
        subresource="scale",
    )
    guarded = {"metadata": {"resourceVersion": scale.metadata.resource_version}}
    with pytest.raises(ApiException) as info:
        await apps.patch_namespaced_deployment_scale(
            "sim", "default", {**guarded, "spec": {"replicas": 6}}, _content_type=MERGE
        )
    assert info.value.status == 409 and spec_replicas(api.store, "default", "sim") == 4


async def test_an_unknown_patch_type_is_415_and_negative_replicas_are_422(
    api: KubeApiServer, client: ApiClient
) -> None:
    add_deployment(api.store)
    apps = AppsV1Api(client)
    codes = []
    for body, content_type in (
        ({"spec": {"replicas": 3}}, "application/json"),
        ({"spec": {"replicas": -1}}, MERGE),
    ):
        with pytest.raises(ApiException) as info:
            await apps.patch_namespaced_deployment_scale(
                "sim", "default", body, _content_type=content_type
            )
        codes.append(info.value.status)
    assert codes == [415, 422] and spec_replicas(api.store, "default", "sim") == 2


async def test_discovery_documents_list_the_served_resources(client: ApiClient) -> None:
    assert (await VersionApi(client).get_code()).major == "1"
    assert (await CoreApi(client).get_api_versions()).versions == ["v1"]
    groups = {g.name for g in (await ApisApi(client).get_api_versions()).groups}
    assert {"apps", "discovery.k8s.io", "coordination.k8s.io"} <= groups
    apps = {r.name: r for r in (await AppsV1Api(client).get_api_resources()).resources}
    assert apps["deployments"].namespaced and apps["deployments/scale"].kind == "Scale"
    core = {r.name for r in (await CoreV1Api(client).get_api_resources()).resources}
    assert {"pods", "events", "namespaces"} <= core


async def test_a_namespace_is_created_and_read_cluster_scoped(client: ApiClient) -> None:
    core = CoreV1Api(client)
    await core.create_namespace({"metadata": {"name": "models"}})
    assert (await core.read_namespace("models")).metadata.name == "models"
    assert [n.metadata.name for n in (await core.list_namespace()).items] == ["models"]
