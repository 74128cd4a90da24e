"""The Deployment ``scale`` subresource (autoscaling/v1 Scale): GET, PUT and PATCH, with
``409 Conflict`` when the resourceVersion sent is stale, as the real server does."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from loadtest.kube_api.patch import apply_patch
from loadtest.kube_api.store import Conflict, NotFound, ObjectStore
from loadtest.kube_api.wire import Target, status

__all__ = ["handle", "scale_of"]

DEPLOYMENTS = "apps/v1/deployments"


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


def _reply(obj: dict[str, Any], code: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=code, content_type="application/json")


async def handle(store: ObjectStore, request: web.Request, target: Target) -> web.Response:
    ns, name = target.namespace or "", target.name or ""
    try:
        current = store.get(DEPLOYMENTS, ns, name)
        if request.method == "GET":
            return _reply(scale_of(current))
        if request.method not in ("PUT", "PATCH"):
            return _reply(status(405, "MethodNotAllowed", f"{request.method} on scale"), 405)
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
        replicas = int((wanted.get("spec") or {}).get("replicas") or 0)

        def set_replicas(d: dict[str, Any]) -> None:
            d.setdefault("spec", {})["replicas"] = replicas

        updated = store.update(DEPLOYMENTS, ns, name, set_replicas, expect_rv=sent_rv)
        return _reply(scale_of(updated))
    except NotFound as exc:
        return _reply(status(404, "NotFound", str(exc)), 404)
    except Conflict as exc:
        return _reply(status(409, "Conflict", str(exc)), 409)
    except (ValueError, TypeError, KeyError) as exc:
        return _reply(status(400, "BadRequest", str(exc)), 400)
