"""Helpers of the whole-loop tests: the stack on real processes, its API, its load.

Each test module starts one stack of its own (``start_stack``): the control plane process
(the Kubernetes API double and its kubelet running the Deployment ``models/sim`` as slow
simulated pods), the autoscaler process (capacity mode, short windows) and the gateway process
(its pods from the EndpointSlices, its load streamed to the autoscaler). The tests read the
Deployment over the API double's REST wire, the autoscaler's decisions from its metrics page,
and drive the gateway with ``Load``: an open-loop sender on the project's lean HTTP client that
runs until it is stopped and counts every answer.

Nothing here asserts on a measured time: ``eventually`` waits for a condition and fails only on
a generous bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from loadtest.clients.base import ClientSpec, InferClient, error_kind
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import generator_client
from loadtest.probes.metrics import parse_metrics
from loadtest.stack.loop import LoopConfig, autoscaler_config, control_plane_args, gateway_model
from loadtest.stack.procs import (
    AutoscalerProc,
    ControlPlaneProc,
    GatewayProc,
    start_autoscaler,
    start_control_plane,
    start_gateway,
)

BOUND_S = 60.0  # the most any wait may take before the test fails; never a measured figure
SLOW = LoopConfig(startup_s=0.5, max_replicas=4)  # F 20 ms, c 2 ms/row, batches of 16
DEPLOYMENT = "/apis/apps/v1/namespaces/{ns}/deployments/{name}"


def eventually(check: Callable[[], bool], what: str, bound_s: float = BOUND_S) -> None:
    """Wait until ``check()`` holds; fail after ``bound_s``."""
    end = time.monotonic() + bound_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {bound_s:g} s: {what}")


def _json(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/merge-patch+json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=5) as resp:
        return dict(json.loads(resp.read()))


@dataclass
class Stack:
    """The loop's three processes (the autoscaler absent when not wanted) and how to read it."""

    config: LoopConfig
    plane: ControlPlaneProc
    gateway: GatewayProc
    autoscaler: AutoscalerProc | None = None
    api: str = ""  # the API double's base URL, from the kubeconfig

    @property
    def _deployment(self) -> str:
        path = DEPLOYMENT.format(ns=self.config.namespace, name=self.config.model)
        return self.api + path

    def deployment(self) -> dict[str, Any]:
        return _json("GET", self._deployment)

    def replicas(self) -> int:
        """The Deployment's ``spec.replicas``: what the autoscaler (or a test) asked for."""
        return int(self.deployment()["spec"].get("replicas") or 0)

    def pods(self) -> int:
        """The Deployment's Pods in the API, terminating ones included."""
        url = f"{self.api}/api/v1/namespaces/{self.config.namespace}/pods"
        return len(_json("GET", url).get("items") or [])

    def ready(self) -> int:
        """The Deployment's ready pods, as the kubelet reports them."""
        return int(self.deployment().get("status", {}).get("readyReplicas") or 0)

    def scale(self, replicas: int) -> None:
        """Patch the scale subresource, as ``kubectl scale`` would."""
        _json("PATCH", self._deployment + "/scale", {"spec": {"replicas": replicas}})

    def decisions(self, reason: str | None = None) -> float:
        """``autoscaler_decisions_total`` for the model (of ``reason``, or of every reason)."""
        return self.autoscaler_metric(
            "autoscaler_decisions_total", **({"reason": reason} if reason else {})
        )

    def autoscaler_metric(self, name: str, **labels: str) -> float:
        """The sum of the autoscaler's samples ``name`` for the model (0 when absent)."""
        assert self.autoscaler is not None
        with urllib.request.urlopen(self.autoscaler.metrics_url, timeout=5) as resp:
            page = parse_metrics(resp.read().decode())
        return page.total(name, model=self.config.model, **labels) or 0.0

    def stop(self) -> None:
        """The gateway, the autoscaler, then the control plane (which drains every pod)."""
        with contextlib.ExitStack() as stack:
            stack.callback(self.plane.stop)
            if self.autoscaler is not None:
                stack.callback(self.autoscaler.stop)
            stack.callback(self.gateway.stop)


def start_stack(
    tmp: Path,
    config: LoopConfig = SLOW,
    *,
    scaling: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    autoscaler: bool = True,
    gateway: dict[str, Any] | None = None,
) -> Stack:
    """The loop for ``config``: ``scaling`` overrides the autoscaler's scaling parameters and
    ``settings`` its top-level ones, ``gateway`` adds to the gateway's model; without
    ``autoscaler`` the scale is the test's."""
    config = replace(config, kubeconfig=tmp / "kubeconfig")
    plane = start_control_plane(config.kubeconfig, control_plane_args(config))
    try:
        server = _server(config.kubeconfig)
        scaler = None
        extra: dict[str, Any] = {}
        if autoscaler:
            doc = autoscaler_config(config) | {"tick_ms": 250, **(settings or {})}
            doc["models"][0]["scaling"].update(scaling or {})
            scaler = start_autoscaler(doc)
            extra = {"autoscaler": {"address": scaler.grpc_address}}
        try:
            model = gateway_model(config) | (gateway or {})
            gw = start_gateway([model], extra=extra, wait_models=config.pods > 0)
        except BaseException:
            if scaler is not None:
                scaler.stop()
            raise
    except BaseException:
        plane.stop()
        raise
    return Stack(config, plane, gw, scaler, server)


def _server(kubeconfig: Path) -> str:
    doc = yaml.safe_load(kubeconfig.read_text())
    return str(doc["clusters"][0]["cluster"]["server"]).rstrip("/")


@contextlib.contextmanager
def stack_of(tmp: Path, config: LoopConfig = SLOW, **kwargs: Any) -> Iterator[Stack]:
    """``start_stack`` that stops it all on exit."""
    stack = start_stack(tmp, config, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


@dataclass
class Answers:
    """What ``Load`` got back: the successes and the failures by kind."""

    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    sample: str = ""

    @property
    def sent(self) -> int:
        return self.ok + sum(self.errors.values())


class Load:
    """Requests of ``rows`` rows to the gateway at ``rate`` a second, evenly spaced, on a
    thread of its own, until ``stop()``, which waits for every answer and returns them.
    ``rate`` may be changed while it runs (a step)."""

    def __init__(self, url: str, rate: float, rows: int = 1, timeout_s: float = 30.0) -> None:
        self.rate = rate
        self.answers = Answers()
        spec = ClientSpec("http-json", url, SimPayload(rows=rows), timeout_s=timeout_s)
        self._spec = spec
        self._stop = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Answers:
        self._stop.set()
        self._thread.join(BOUND_S)
        assert not self._thread.is_alive(), "load did not finish"
        if self._failed is not None:
            raise AssertionError(f"the load failed: {self._failed!r}")
        return self.answers

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self._failed = exc

    async def _one(self, client: InferClient) -> None:
        try:
            await client.infer()
        except Exception as exc:
            self.answers.errors[error_kind(exc)] += 1
            self.answers.sample = self.answers.sample or str(exc)
        else:
            self.answers.ok += 1

    async def _run(self) -> None:
        client = generator_client(self._spec)
        tasks: set[asyncio.Task[None]] = set()
        due = time.monotonic()
        try:
            while not self._stop.is_set():
                due += 1.0 / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                task = asyncio.create_task(self._one(client))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks)
        finally:
            await client.aclose()
