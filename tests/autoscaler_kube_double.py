"""A Kubernetes API server double for the autoscaler's tests, faithful to the wire protocol.

It serves, on 127.0.0.1, what the actuator and the leader election call: the ``apps/v1``
Deployment scale subresource (GET; PATCH with merge-patch, a ``metadata.resourceVersion``
precondition answered 409 Conflict when stale), core/v1 Events (POST), and
``coordination.k8s.io/v1`` Leases (GET, POST with 409 AlreadyExists, PUT with the
resourceVersion precondition). Errors are ``Status`` objects. Every write bumps one global
resourceVersion. Faults are injected per request kind: ``fail(kind, status, headers)``; a
``before_patch`` hook lets a test play another writer racing the actuator. Like the real
server, a Scale at 0 replicas omits ``spec.replicas``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["KubeDouble", "merge_patch"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _status(code: int, reason: str, message: str, headers: dict[str, str] | None = None) -> Any:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code, headers=headers)


_REASONS = {
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass
class KubeDouble:
    """The API state and its aiohttp app."""

    rv: int = 100
    deployments: dict[tuple[str, str], int] = field(default_factory=dict)  # (ns, name): replicas
    deployment_rv: dict[tuple[str, str], str] = field(default_factory=dict)
    leases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, kind)
    faults: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    before_patch: Callable[[KubeDouble], None] | None = None

    def _bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    def add_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.deployments[(namespace, name)] = replicas
        self.deployment_rv[(namespace, name)] = self._bump()

    def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        """Another writer (kubectl, an HPA) changes the count."""
        self.add_deployment(namespace, name, replicas)

    def fail(self, kind: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next request of ``kind`` (get_scale, patch_scale, event, get_lease,
        create_lease, replace_lease) with ``status``."""
        self.faults.setdefault(kind, []).append((status, headers or {}))

    def _fault(self, kind: str) -> Any:
        self.requests.append(("", kind))
        queue = self.faults.get(kind)
        if queue:
            status, headers = queue.pop(0)
            return _status(status, _REASONS.get(status, "Unknown"), f"injected {status}", headers)
        return None

    def app(self) -> web.Application:
        app = web.Application()
        scale = "/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale"
        app.router.add_get(scale, self._get_scale)
        app.router.add_patch(scale, self._patch_scale)
        app.router.add_post("/api/v1/namespaces/{ns}/events", self._create_event)
        leases = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
        app.router.add_post(leases, self._create_lease)
        app.router.add_get(leases + "/{name}", self._get_lease)
        app.router.add_put(leases + "/{name}", self._replace_lease)
        return app

    # -- scale -----------------------------------------------------------------------------

    def _scale(self, ns: str, name: str) -> dict[str, Any]:
        replicas = self.deployments[(ns, name)]
        spec = {"replicas": replicas} if replicas else {}  # omitempty, as the real server
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": name,
                "namespace": ns,
                "resourceVersion": self.deployment_rv[(ns, name)],
                "uid": f"uid-{ns}-{name}",
            },
            "spec": spec,
            "status": {"replicas": replicas, "selector": f"app={name}"},
        }

    def _missing(self, ns: str, name: str) -> Any:
        if (ns, name) not in self.deployments:
            return _status(404, "NotFound", f'deployments.apps "{name}" not found')
        return None

    async def _get_scale(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        failed = self._fault("get_scale") or self._missing(ns, name)
        return failed or web.json_response(self._scale(ns, name))

    async def _patch_scale(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        failed = self._fault("patch_scale") or self._missing(ns, name)
        if failed:
            return failed
        if request.content_type != "application/merge-patch+json":
            return _status(415, "UnsupportedMediaType", f"unsupported {request.content_type}")
        if self.before_patch is not None:
            hook, self.before_patch = self.before_patch, None
            hook(self)
        patch = json.loads(await request.read())
        if not isinstance(patch, dict):
            return _status(400, "BadRequest", "a merge patch must be an object")
        wanted_rv = patch.get("metadata", {}).get("resourceVersion")
        current = self._scale(ns, name)
        if wanted_rv is not None and wanted_rv != current["metadata"]["resourceVersion"]:
            return _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on deployments.apps "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
            )
        merged = merge_patch(current, patch)
        replicas = merged.get("spec", {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            return _status(422, "Invalid", "spec.replicas must be a non-negative integer")
        self.add_deployment(ns, name, replicas)
        return web.json_response(self._scale(ns, name))

    # -- events ----------------------------------------------------------------------------

    async def _create_event(self, request: web.Request) -> web.StreamResponse:
        failed = self._fault("event")
        if failed:
            return failed
        body = await request.json()
        for key in ("involvedObject", "reason", "message"):
            if key not in body:
                return _status(422, "Invalid", f"{key}: Required value")
        body.setdefault("metadata", {})["resourceVersion"] = self._bump()
        self.events.append(body)
        return web.json_response(body, status=201)

    # -- leases ----------------------------------------------------------------------------

    async def _get_lease(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["ns"], request.match_info["name"])
        failed = self._fault("get_lease")
        if failed:
            return failed
        if key not in self.leases:
            return _status(404, "NotFound", f'leases.coordination.k8s.io "{key[1]}" not found')
        return web.json_response(self.leases[key])

    async def _create_lease(self, request: web.Request) -> web.StreamResponse:
        failed = self._fault("create_lease")
        if failed:
            return failed
        body = await request.json()
        key = (request.match_info["ns"], body["metadata"]["name"])
        if key in self.leases:
            return _status(409, "AlreadyExists", f'leases "{key[1]}" already exists')
        body["metadata"]["resourceVersion"] = self._bump()
        self.leases[key] = body
        return web.json_response(body, status=201)

    async def _replace_lease(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["ns"], request.match_info["name"])
        failed = self._fault("replace_lease")
        if failed:
            return failed
        if key not in self.leases:
            return _status(404, "NotFound", f'leases "{key[1]}" not found')
        body = await request.json()
        wanted = body.get("metadata", {}).get("resourceVersion")
        if wanted is not None and wanted != self.leases[key]["metadata"]["resourceVersion"]:
            return _status(409, "Conflict", f'Operation cannot be fulfilled on leases "{key[1]}"')
        body["metadata"]["resourceVersion"] = self._bump()
        self.leases[key] = body
        return web.json_response(body)
