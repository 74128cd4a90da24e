"""The autoscaler's live status on its metrics port: ``GET /status`` (JSON), ``GET /`` (a page).

``/status`` has, per model, the desired, current and ready replicas, the reason of the newest
decision, the learnt pod start-up time, the gateway replicas reporting, and the last decisions
that changed the count or reason with their inputs (``autoscaler.decision_log``), newest first;
``?decisions=N`` (1 to the history's length) says how many. ``/`` is a plain HTML page whose
inline script reads ``/status`` every second. ``autoscaler explain MODEL`` prints the same.

A model whose Deployment serves others too shows that Deployment's one decision;
``deployment_models`` lists the models it came from and ``demand_pods`` is this model's share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from autoscaler.aggregate import ReportStore
from autoscaler.controller import Controller, Target

__all__ = ["DEFAULT_DECISIONS", "AutoscalerStatus", "add_status_routes"]

DEFAULT_DECISIONS = 20
_NO_STORE = {"Cache-Control": "no-store"}


class AutoscalerStatus:
    """Reads the controller, its history and the report store into one JSON-able document."""

    def __init__(
        self,
        *,
        controller: Controller,
        store: ReportStore,
        identity: str,
        is_leader: Callable[[], bool],
        dry_run: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._controller = controller
        self._store = store
        self._identity = identity
        self._is_leader = is_leader
        self._dry_run = dry_run
        self._clock = clock

    def read(self, decisions: int = DEFAULT_DECISIONS) -> dict[str, Any]:
        now = self._clock()
        return {
            "service": "autoscaler",
            "identity": self._identity,
            "leader": self._is_leader(),
            "dry_run": self._dry_run,
            "models": [self._model(t, now, decisions) for t in self._controller.targets],
        }

    def _model(self, target: Target, now: float, decisions: int) -> dict[str, Any]:
        c, model = self._controller, target.model
        key = c.key_of(model)
        latest = c.history.latest(key)
        d = latest.decision if latest is not None else None
        obs = latest.observations if latest is not None else None
        samples = c.startup.samples(key)
        waiting = c.startup.pending_since(key)
        share = next((s for s in latest.shares if s.model == model), None) if latest else None
        return {
            "model": model,
            "namespace": target.namespace,
            "deployment": target.deployment,
            "deployment_models": list(c.models_with(model)),
            "demand_pods": _round(share.pods) if share is not None else None,
            "actuation": target.actuation,
            "desired": d.desired if d else None,
            "current": d.current if d else None,
            "ready": obs.ready_replicas if obs else None,
            "reason": d.reason.value if d else None,
            "panicking": d.panicking if d else False,
            "startup": {
                "estimate_s": round(c.startup.estimate(key), 3),
                "learnt": bool(samples),
                "prior_s": (target.deployment_spec or target.spec).startup_s,
                "samples_s": [round(s, 3) for s in samples],
                "scale_up_waiting_s": round(now - waiting, 3) if waiting is not None else None,
            },
            "gateways": self._store.replicas(model, now),
            "report_age_s": _round(self._store.staleness(model, now)),
            "latest": latest.fields(now) if latest is not None else None,
            "decisions": [e.fields(now) for e in c.history.changes(key)[:decisions]],
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _decisions(request: web.Request) -> int:
    raw = request.query.get("decisions")
    if raw is None:
        return DEFAULT_DECISIONS
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise web.HTTPBadRequest(text=f"decisions must be a whole number >= 1, got {raw!r}")
    return int(raw)


def add_status_routes(app: web.Application, status: AutoscalerStatus) -> None:
    """``GET /`` (the page) and ``GET /status`` (its JSON) on ``app``."""
    page = resources.files("autoscaler").joinpath("status_page.html").read_text()

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers=_NO_STORE)

    async def read(request: web.Request) -> web.Response:
        body = orjson.dumps(status.read(_decisions(request)))
        return web.Response(body=body, content_type="application/json", headers=_NO_STORE)

    app.router.add_get("/", index)
    app.router.add_get("/status", read)
