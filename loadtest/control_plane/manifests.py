"""The objects the kubelet writes, pure: a Pod, its EndpointSlice and Events, as Kubernetes has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtest.control_plane.reconcile import Phase
from loadtest.control_plane.spec import PodTemplate
from loadtest.kube_api.objects import SliceEndpoint, endpoint_slice
from loadtest.stack.procs import HOST

__all__ = ["HOST", "MANAGED_BY", "PodFacts", "event", "pod_object", "pod_slice"]

MANAGED_BY = "kubelet.loadtest"
_CONTAINER = "model"


@dataclass(frozen=True, slots=True)
class PodFacts:
    """One pod as the kubelet knows it; the timestamps are RFC 3339."""

    name: str
    namespace: str
    template: PodTemplate
    phase: Phase
    created_at: str
    grpc_port: int | None = None  # None while pending (no process listening yet)
    http_port: int | None = None
    deleting_at: str | None = None  # when it was told to terminate
    owner_uid: str = ""


def _condition(kind: str, ok: bool, at: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": at}


def pod_object(pod: PodFacts) -> dict[str, Any]:
    """The Pod: the template's labels, 127.0.0.1 as its IP, Ready as its process answers;
    a terminating pod has its ``deletionTimestamp`` set (what kubectl shows as Terminating)."""
    t = pod.template
    ready = pod.phase is Phase.READY
    running = pod.phase is not Phase.PENDING
    meta: dict[str, Any] = {
        "name": pod.name,
        "namespace": pod.namespace,
        "labels": dict(t.labels),
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": t.deployment,
                "uid": pod.owner_uid,
                "controller": True,
            }
        ],
    }
    if pod.deleting_at is not None:
        meta["deletionTimestamp"] = pod.deleting_at
        meta["deletionGracePeriodSeconds"] = int(t.grace_s)
    ports = [("grpc", pod.grpc_port), ("http", pod.http_port)]
    container: dict[str, Any] = {
        "name": _CONTAINER,
        "image": "simpod",
        "args": t.args(),
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports if p],
    }
    state = {"running": {"startedAt": pod.created_at}} if running else {"waiting": {}}
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": {
            "containers": [container],
            "nodeName": "localhost",
            "terminationGracePeriodSeconds": int(t.grace_s),
        },
        "status": {
            "phase": "Running" if running else "Pending",
            "hostIP": HOST,
            "podIP": HOST,
            "podIPs": [{"ip": HOST}],
            "startTime": pod.created_at,
            "conditions": [
                _condition("PodScheduled", True, pod.created_at),
                _condition("Initialized", True, pod.created_at),
                _condition("ContainersReady", ready, pod.created_at),
                _condition("Ready", ready, pod.created_at),
            ],
            "containerStatuses": [
                {
                    "name": _CONTAINER,
                    "image": "simpod",
                    "imageID": "",
                    "ready": ready,
                    "started": running,
                    "restartCount": 0,
                    "state": state,
                }
            ],
        },
    }


def pod_slice(pod: PodFacts) -> dict[str, Any] | None:
    """The pod's own EndpointSlice of the template's Service (each simulated pod listens on a
    port of its own, and a slice has one port for all its endpoints): not ready while
    starting, ready and serving once ready, terminating and serving while draining. None while
    pending: there is no port to list yet."""
    if pod.grpc_port is None or pod.phase in (Phase.PENDING, Phase.EXITED):
        return None
    ready = pod.phase is Phase.READY
    terminating = pod.phase is Phase.TERMINATING
    endpoint = SliceEndpoint(
        HOST,
        ready=ready,
        serving=ready or terminating,
        terminating=terminating,
        pod=pod.name,
        namespace=pod.namespace,
    )
    obj = endpoint_slice(pod.name, pod.template.service, [endpoint], port=pod.grpc_port)
    obj["metadata"]["namespace"] = pod.namespace
    obj["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] = MANAGED_BY
    return obj


def event(
    namespace: str,
    involved: tuple[str, str, str],
    reason: str,
    message: str,
    at: str,
    *,
    warning: bool = False,
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (apiVersion, kind, name), named by the server."""
    api_version, kind, name = involved
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "namespace": namespace,
        },
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": MANAGED_BY},
        "reportingComponent": MANAGED_BY,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    }
