"""A simulated pod's Pod and EndpointSlice, phase by phase, as the gateway's discovery sees them."""

from __future__ import annotations

import pytest

from gateway.discovery.endpoints import slice_endpoints
from loadtest.control_plane.manifests import PodFacts, pod_object, pod_slice
from loadtest.control_plane.reconcile import Phase
from loadtest.control_plane.spec import Defaults, template_of
from loadtest.kube_api.objects import deployment

TEMPLATE = template_of(deployment("sim", 1, {"app": "sim"}), Defaults())
AT = "2025-01-01T00:00:00Z"


def facts(phase: Phase, **kw: object) -> PodFacts:
    ports = {} if phase is Phase.PENDING else {"grpc_port": 9001, "http_port": 9000}
    return PodFacts("sim-abcde", "models", TEMPLATE, phase, AT, **{**ports, **kw})  # type: ignore[arg-type]


def test_a_pending_pod_has_no_slice_and_is_not_ready() -> None:
    pod = pod_object(facts(Phase.PENDING))
    assert pod["status"]["phase"] == "Pending"
    assert pod["metadata"]["labels"] == {"app": "sim"}
    assert pod_slice(facts(Phase.PENDING)) is None


@pytest.mark.parametrize(
    ("phase", "ready", "serving", "terminating"),
    [
        (Phase.STARTING, False, False, False),
        (Phase.READY, True, True, False),
        (Phase.TERMINATING, False, True, True),
    ],
)
def test_slice_conditions_follow_the_phase(
    phase: Phase, ready: bool, serving: bool, terminating: bool
) -> None:
    obj = pod_slice(facts(phase))
    assert obj is not None
    assert obj["metadata"]["labels"]["kubernetes.io/service-name"] == "sim"
    (endpoint,) = slice_endpoints(obj, "grpc")
    assert endpoint.address == "127.0.0.1:9001" and endpoint.pod == "sim-abcde"
    assert (endpoint.ready, endpoint.serving, endpoint.terminating) == (ready, serving, terminating)


def test_a_terminating_pod_has_a_deletion_timestamp_and_its_ports() -> None:
    pod = pod_object(facts(Phase.TERMINATING, deleting_at=AT))
    assert pod["metadata"]["deletionTimestamp"] == AT
    assert pod["status"]["podIP"] == "127.0.0.1"
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports == {"grpc": 9001, "http": 9000}
