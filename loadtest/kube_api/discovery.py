"""The API discovery documents (`/version`, `/api`, `/apis`, resource lists) that kubectl reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CLUSTER_SCOPED", "KINDS", "RESOURCES", "Resource", "document"]

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource the double serves, as its group/version's resource list names it."""

    group: str  # "" is the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
        }
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        return out


RESOURCES = (
    Resource("", "v1", "pods", "Pod", short_names=("po",)),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource("", "v1", "services", "Service", short_names=("svc",)),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    Resource("apps", "v1", "deployments", "Deployment", short_names=("deploy",)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
)
KINDS = {r.plural: r.kind for r in RESOURCES}
CLUSTER_SCOPED = frozenset(r.plural for r in RESOURCES if not r.namespaced)

# Subresources listed beside their resource: (group/version, name, its own group, version, kind).
_SUBRESOURCES = {
    "apps/v1": [
        {
            "name": "deployments/scale",
            "singularName": "",
            "namespaced": True,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        },
    ],
}

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-loadtest",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def _resource_list(group_version: str) -> dict[str, Any] | None:
    resources = [r.to_json() for r in RESOURCES if r.group_version == group_version]
    if not resources:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources + _SUBRESOURCES.get(group_version, []),
    }


def document(path: str, address: str) -> dict[str, Any] | None:
    """The discovery document served at ``path`` (``address``: the server's host:port), or
    None when ``path`` is not a discovery path."""
    parts = [p for p in path.split("/") if p]
    groups = _groups()
    if parts == ["version"]:
        return VERSION
    if parts == ["api"]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }
    if parts == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(name, versions) for name, versions in groups.items()],
        }
    if len(parts) == 2 and parts[0] == "api":
        return _resource_list(parts[1])
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
        return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], groups[parts[1]])}
    if len(parts) == 3 and parts[0] == "apis":
        return _resource_list(f"{parts[1]}/{parts[2]}")
    return None
