"""Builders for the objects tests and the local control plane put into the double."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ENDPOINTSLICES",
    "SliceEndpoint",
    "deployment",
    "endpoint_slice",
    "write_kubeconfig",
]

ENDPOINTSLICES = "discovery.k8s.io/v1/endpointslices"


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    """One endpoint of a slice; None conditions are left out, as the API allows."""

    ip: str
    ready: bool | None = True
    serving: bool | None = None
    terminating: bool | None = None
    pod: str | None = None

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
            out["targetRef"] = {"kind": "Pod", "name": self.pod, "namespace": "default"}
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
