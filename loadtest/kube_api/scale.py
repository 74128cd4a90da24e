"""The Deployment ``scale`` subresource (autoscaling/v1 Scale): GET, PUT and PATCH, with
``409 Conflict`` when the resourceVersion sent is stale, as the real server does."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from loadtest.kube_api.objects import DEPLOYMENTS, set_replicas
from loadtest.kube_api.patch import apply_patch
from loadtest.kube_api.store import Invalid, ObjectStore
from loadtest.kube_api.wire import Target, error_response, json_response

__all__ = ["handle", "scale_of"]


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Scale view of a Deployment; replicas 0 is omitted (omitempty), so clients read
    ``spec.replicas`` as None."""
    meta = deployment["metadata"]
    replicas = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    st = deployment.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": replicas} if replicas else {},
        "status": {
            "replicas": int(st.get("replicas", 0) or 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


def _replicas(scale: dict[str, Any]) -> int:
    replicas = (scale.get("spec") or {}).get("replicas") or 0
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise Invalid(
            f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0"
        )
    return replicas


async def handle(store: ObjectStore, request: web.Request, target: Target) -> web.Response:
    """Serve one request on ``deployments/{name}/scale``; the store's errors propagate."""
    ns, name = target.namespace or "", target.name or ""
    current = store.get(DEPLOYMENTS, ns, name)
    if request.method == "GET":
        return json_response(scale_of(current))
    if request.method not in ("PUT", "PATCH"):
        return error_response(405, f"{request.method} on scale is not supported")
    body = json.loads(await request.text())
    if request.method == "PUT":
        wanted = body
    else:
        wanted = apply_patch(scale_of(current), body, request.content_type)
    sent_rv = (wanted.get("metadata") or {}).get("resourceVersion")
    if request.method == "PATCH" and not (
        isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion")
    ):
        sent_rv = None  # a patch without a version is unconditional
    updated = set_replicas(store, ns, name, _replicas(wanted), expect_rv=sent_rv)
    return json_response(scale_of(updated))
