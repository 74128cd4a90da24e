"""The gateway Service's replicas stand in for the coordinator's list while none answers: the
real kubernetes-asyncio client against the API server double, the reporter in this process."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.config import AutoscalerSettings, DiscoverySettings
from gateway.reporter import LoadReporter
from loadtest.kube_api.objects import (
    ENDPOINTSLICES,
    SliceEndpoint,
    endpoint_slice,
    write_kubeconfig,
)
from loadtest.kube_api.server import KubeApiServer
from loadtest.stack.procs import free_port
from tests.fakes.reports import Snapshots, until


def gateway_slice(*endpoints: SliceEndpoint) -> dict[str, object]:
    return endpoint_slice("gw-x", "gw", list(endpoints), port=8000, port_name="http")


async def test_the_services_ready_replicas_are_the_peers_until_a_coordinator_answers(
    api: KubeApiServer, tmp_path: Path
) -> None:
    api.store.create(
        ENDPOINTSLICES,
        "default",
        gateway_slice(
            SliceEndpoint("10.0.0.1", pod="gw-a"),
            SliceEndpoint("10.0.0.2", pod="gw-b"),
            SliceEndpoint("10.0.0.3", pod="gw-c", ready=False),  # starting: not a peer yet
        ),
    )
    kubeconfig = str(write_kubeconfig(tmp_path / "kubeconfig", api.url))
    settings = AutoscalerSettings(
        address=f"127.0.0.1:{free_port()}",  # no autoscaler answers there
        report_interval_ms=20,
        replica_id="gw-b-123",
        replicas_discovery=DiscoverySettings(service="gw", port_name="http", kubeconfig=kubeconfig),
    )
    heard: list[tuple[str, str, dict[str, str]]] = []

    def on_peers(model: str, me: str, peers: Mapping[str, str]) -> None:
        heard.append((model, me, dict(peers)))

    reporter = LoadReporter(
        settings=settings, snapshots=Snapshots(), on_peers=on_peers, peer_address="10.0.0.2:8000"
    )
    assert reporter.service_peers is not None
    reporter.service_peers.me = "gw-b"  # its pod name (the host name, in a cluster)
    reporter.start()
    try:
        await until(lambda: bool(heard))
        both = {"gw-a": "10.0.0.1:8000", "gw-b": "10.0.0.2:8000"}
        assert heard[-1] == ("sim", "gw-b", both)
        api.store.replace(  # gw-c is ready now: the next list has all three
            ENDPOINTSLICES,
            "default",
            gateway_slice(
                SliceEndpoint("10.0.0.1", pod="gw-a"),
                SliceEndpoint("10.0.0.2", pod="gw-b"),
                SliceEndpoint("10.0.0.3", pod="gw-c"),
            ),
        )
        await until(lambda: len(heard[-1][2]) == 3)
        reporter.peer_address = ""  # forwarding off here (keys or TLS): the ids, no addresses
        await until(lambda: heard[-1][2] == dict.fromkeys(["gw-a", "gw-b", "gw-c"], ""))
    finally:
        await reporter.stop()


def test_a_coordinators_list_is_kept_until_it_is_stale() -> None:
    settings = AutoscalerSettings(
        address="127.0.0.1:1",
        peers_stale_s=10,
        replicas_discovery=DiscoverySettings(service="gw", kubeconfig="unused"),
    )
    reporter = LoadReporter(settings=settings, snapshots=Snapshots(), clock=lambda: 0.0)
    assert reporter.service_peers is not None
    assert reporter.fallback_peers(0.0) is None  # the Service has listed nobody yet
    reporter.service_peers.peers = {"gw-a": "10.0.0.1:8000"}
    assert reporter.fallback_peers(0.0) == {"gw-a": "10.0.0.1:8000"}  # no coordinator yet
    reporter._last_reply = 100.0  # a coordinator listed the replicas then
    assert reporter.fallback_peers(105.0) is None
    assert reporter.fallback_peers(111.0) == {"gw-a": "10.0.0.1:8000"}  # it has gone quiet
