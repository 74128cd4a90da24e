"""Builders for the objects tests and the local control plane put into the double."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadtest.kube_api.store import ObjectStore

__all__ = [
    "DEPLOYMENTS",
    "ENDPOINTSLICES",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "PODS",
    "SliceEndpoint",
    "deployment",
    "endpoint_slice",
    "set_replicas",
    "spec_replicas",
    "write_kubeconfig",
]

# Resources as the store keys them: "group/version/plural" (the core group is "").
ENDPOINTSLICES = "discovery.k8s.io/v1/endpointslices"
DEPLOYMENTS = "apps/v1/deployments"
LEASES = "coordination.k8s.io/v1/leases"
EVENTS = "/v1/events"
PODS = "/v1/pods"
NAMESPACES = "/v1/namespaces"


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    """One endpoint of a slice; None conditions are left out, as the API allows."""

    ip: str
    ready: bool | None = True
    serving: bool | None = None
    terminating: bool | None = None
    pod: str | None = None
    namespace: str = "default"  # the pod's

    def to_json(self) -> dict[str, Any]:
        conditions = {
            k: v
            for k, v in (
                ("ready", self.ready),
                ("serving", self.serving),
                ("terminating", self.terminating),
            )
            if v is not None
        }
        out: dict[str, Any] = {"addresses": [self.ip], "conditions": conditions}
        if self.pod:
            out["targetRef"] = {"kind": "Pod", "name": self.pod, "namespace": self.namespace}
        return out


def endpoint_slice(
    name: str,
    service: str,
    endpoints: list[SliceEndpoint],
    *,
    port: int,
    port_name: str = "grpc",
) -> dict[str, Any]:
    """An EndpointSlice of ``service``; an empty list is sent as ``endpoints: null``."""
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [e.to_json() for e in endpoints] or None,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    }


def deployment(name: str, replicas: int, labels: dict[str, str]) -> dict[str, Any]:
    """A Deployment of ``replicas`` pods selected by ``labels`` (none of them running yet)."""
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "model", "image": "simpod"}]},
            },
        },
        "status": {"replicas": 0},
    }


def spec_replicas(store: ObjectStore, namespace: str, name: str) -> int:
    """A Deployment's ``spec.replicas`` as stored. It reads without copying, so a test may call
    it from another thread while the server writes (each write replaces the object whole)."""
    return int(store.objects[(DEPLOYMENTS, namespace, name)]["spec"].get("replicas") or 0)


def set_replicas(
    store: ObjectStore, namespace: str, name: str, replicas: int, expect_rv: str | None = None
) -> dict[str, Any]:
    """Write a Deployment's ``spec.replicas`` (guarded by ``expect_rv``, 409 when stale), as
    ``kubectl scale`` or another controller would; returns the Deployment written."""

    def change(obj: dict[str, Any]) -> None:
        obj.setdefault("spec", {})["replicas"] = replicas

    return store.update(DEPLOYMENTS, namespace, name, change, expect_rv=expect_rv)


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> Path:
    """A kubeconfig whose current context points at ``server`` (plain http, no auth)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": server}}],
        "users": [{"name": "double", "user": {}}],
        "contexts": [
            {
                "name": "double",
                "context": {"cluster": "double", "user": "double", "namespace": namespace},
            }
        ],
        "current-context": "double",
    }
    path.write_text(yaml.safe_dump(doc))
    return path
