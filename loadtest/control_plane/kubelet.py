"""The kubelet: turns each Deployment's replicas into ``simpod`` processes and writes their Pods,
EndpointSlices, Events and the Deployment's status into the API double's store (in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from loadtest.control_plane.manifests import PodFacts, event, pod_object, pod_slice
from loadtest.control_plane.reconcile import (
    Action,
    Desired,
    Kill,
    Phase,
    PodView,
    Remove,
    Start,
    Terminate,
    deployment_status,
    reconcile,
)
from loadtest.control_plane.spec import Defaults, PodTemplate, template_of
from loadtest.kube_api.objects import DEPLOYMENTS, ENDPOINTSLICES, EVENTS, PODS
from loadtest.kube_api.store import Change, NotFound, ObjectStore
from loadtest.stack.procs import PodProc, start_pod

__all__ = ["Kubelet"]

log = logging.getLogger(__name__)
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # the letters Kubernetes uses in generated names
_BACKOFF_MAX_S = 10.0


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class _Pod:
    """One pod the kubelet started (or is starting), its process and what was last written."""

    template: PodTemplate
    view: PodView
    created_at: str
    owner_uid: str
    proc: PodProc | None = None
    deleting_at: str | None = None
    written: tuple[Any, Any] = (None, None)  # (Pod, EndpointSlice) as last written

    def facts(self, namespace: str) -> PodFacts:
        return PodFacts(
            self.view.name,
            namespace,
            self.template,
            self.view.phase,
            self.created_at,
            self.proc.grpc_port if self.proc else None,
            self.proc.http_port if self.proc else None,
            self.deleting_at,
            self.owner_uid,
        )


class Kubelet:
    """Runs the pods of every Deployment in ``namespace``; ``step()`` is one pass (the loop
    calls it each ``tick_s`` and on every Deployment write); ``stop()`` stops every pod."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        namespace: str,
        defaults: Defaults | None = None,
        tick_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        pod_stdout: Any = None,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.defaults = defaults or Defaults()
        self.pids: list[int] = []  # every process it started, for a check that none is left
        self._tick_s = tick_s
        self._clock = clock
        self._stdout = pod_stdout
        self._pods: dict[str, _Pod] = {}
        self._starts: set[asyncio.Task[None]] = set()
        self._backoff: dict[str, tuple[float, float]] = {}  # deployment -> (until, last delay)
        self._replicas_seen: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0))
        self.store.on_write.append(self._on_write)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the loop, then every pod: SIGTERM, SIGKILL after its grace period; their
        objects are deleted. Pods still being started are waited for, then stopped too."""
        with contextlib.suppress(ValueError):
            self.store.on_write.remove(self._on_write)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.gather(*self._starts, return_exceptions=True)
            running = [(p.proc, p.template.grace_s) for p in self._pods.values() if p.proc]
            await asyncio.gather(*(asyncio.to_thread(proc.stop, grace) for proc, grace in running))
        finally:
            for pod in self._pods.values():  # whatever happened above: nothing outlives us
                if pod.proc is not None:
                    pod.proc.kill()
                    pod.proc.popen.wait()
            for name in list(self._pods):
                self._delete_objects(name)
            self._pods.clear()
            if self._session is not None:
                await self._session.close()
                self._session = None

    def _on_write(self, change: Change) -> None:
        if change.resource == DEPLOYMENTS and change.namespace == self.namespace:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # one bad pass must not stop the pods being looked after
                log.exception("kubelet: a reconcile pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick_s)
            self._wake.clear()

    # -- one pass ----------------------------------------------------------------------------

    async def step(self) -> None:
        """Observe the processes, then reconcile and write every Deployment's objects."""
        await self._observe()
        now = self._clock()
        items, _ = self.store.list(DEPLOYMENTS, self.namespace, {})
        deployments = {str(d["metadata"]["name"]): d for d in items}
        for name in sorted(set(deployments) | {p.template.deployment for p in self._pods.values()}):
            self._reconcile_one(name, deployments.get(name), now)

    def _reconcile_one(self, name: str, dep: dict[str, Any] | None, now: float) -> None:
        pods = [p for p in self._pods.values() if p.template.deployment == name]
        replicas = int((dep.get("spec") or {}).get("replicas", 1) or 0) if dep else 0
        try:
            template = template_of(dep, self.defaults) if dep else pods[0].template
        except ValueError as exc:
            log.error("kubelet: deployment %s: bad annotation (%s); left as it is", name, exc)
            return
        uid = str((dep or {}).get("metadata", {}).get("uid", ""))
        for pod in pods:
            pod.view = replace(pod.view, current=pod.template == template)
        self._note_scaling(name, replicas, bool(dep))
        until, _ = self._backoff.get(name, (0.0, 0.0))
        desired = Desired(replicas, template.grace_s, start_after=until)
        for action in reconcile(desired, [p.view for p in pods], now):
            self._act(action, template, uid, now)
        self._write_pods(name)
        if dep is not None:
            self._write_status(dep, replicas)

    def _act(self, action: Action, template: PodTemplate, uid: str, now: float) -> None:
        if isinstance(action, Start):
            self._start(template, uid, now)
            return
        pod = self._pods.get(action.name)
        if pod is None:
            return
        if isinstance(action, Terminate):
            pod.view = replace(pod.view, phase=Phase.TERMINATING, since=now)
            pod.deleting_at = _timestamp()
            if pod.proc is not None:
                pod.proc.kill(signal.SIGTERM)
            self._event(("v1", "Pod", action.name), "Killing", "Stopping container model")
        elif isinstance(action, Kill) and pod.proc is not None:
            pod.proc.kill(signal.SIGKILL)
        elif isinstance(action, Remove):
            if pod.proc is not None:
                pod.proc.popen.wait()
            self._delete_objects(action.name)
            del self._pods[action.name]

    # -- starting ----------------------------------------------------------------------------

    def _start(self, template: PodTemplate, uid: str, now: float) -> None:
        name = f"{template.deployment}-" + "".join(self._rng.choices(_SUFFIX, k=5))
        view = PodView(name, Phase.PENDING, since=now, created=now)
        self._pods[name] = _Pod(template, view, _timestamp(), uid)
        task = asyncio.get_running_loop().create_task(self._spawn(name, template))
        self._starts.add(task)
        task.add_done_callback(self._starts.discard)

    async def _spawn(self, name: str, template: PodTemplate) -> None:
        dep = template.deployment
        try:
            proc = await asyncio.to_thread(
                start_pod, template.args(), wait_ready=False, stdout=self._stdout
            )
        except Exception as exc:
            _, last = self._backoff.get(dep, (0.0, 0.0))
            delay = min(max(2 * last, 0.5), _BACKOFF_MAX_S)
            self._backoff[dep] = (self._clock() + delay, delay)
            log.error("kubelet: pod %s did not start (%s); again in %.1f s", name, exc, delay)
            self._event(("v1", "Pod", name), "Failed", f"simpod did not start: {exc}", True)
            if name in self._pods:
                self._pods[name].view = replace(
                    self._pods[name].view, phase=Phase.EXITED, since=self._clock()
                )
        else:
            self.pids.append(proc.pid)
            self._backoff.pop(dep, None)
            pod = self._pods[name]
            pod.proc = proc
            pod.view = replace(pod.view, phase=Phase.STARTING, since=self._clock())
            self._event(("v1", "Pod", name), "Started", f"Started simpod on :{proc.grpc_port}")
        self._wake.set()

    # -- observing ---------------------------------------------------------------------------

    async def _observe(self) -> None:
        """Exited processes, and starting pods that now answer ready."""
        now = self._clock()
        starting: list[_Pod] = []
        for pod in self._pods.values():
            if pod.proc is None or pod.view.phase is Phase.EXITED:
                continue
            if pod.proc.popen.poll() is not None:
                pod.view = replace(pod.view, phase=Phase.EXITED, since=now)
            elif self._deleted_by_someone(pod):  # ``kubectl delete pod``: it terminates
                self._act(Terminate(pod.view.name), pod.template, pod.owner_uid, now)
            elif pod.view.phase is Phase.STARTING:
                starting.append(pod)
        answers = await asyncio.gather(*(self._ready(p) for p in starting))
        for pod, ready in zip(starting, answers, strict=True):
            if ready and pod.view.phase is Phase.STARTING:
                pod.view = replace(pod.view, phase=Phase.READY, since=self._clock())

    def _deleted_by_someone(self, pod: _Pod) -> bool:
        written = pod.written[0] is not None
        gone = (PODS, self.namespace, pod.view.name) not in self.store.objects
        return written and gone and pod.view.phase is not Phase.TERMINATING

    async def _ready(self, pod: _Pod) -> bool:
        assert pod.proc is not None and self._session is not None
        try:
            async with self._session.get(f"{pod.proc.http_url}/v2/health/ready") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    # -- writing -----------------------------------------------------------------------------

    def _write_pods(self, deployment: str) -> None:
        for pod in self._pods.values():
            if pod.template.deployment != deployment or pod.view.phase is Phase.EXITED:
                continue
            facts = pod.facts(self.namespace)
            wanted = (pod_object(facts), pod_slice(facts))
            if wanted[0] != pod.written[0]:
                self._put(PODS, wanted[0])
            if wanted[1] != pod.written[1] and wanted[1] is not None:
                self._put(ENDPOINTSLICES, wanted[1])
            pod.written = wanted

    def _put(self, resource: str, obj: dict[str, Any]) -> None:
        """Create or replace (unconditionally: the kubelet owns these objects)."""
        try:
            self.store.replace(resource, self.namespace, obj)
        except NotFound:
            self.store.create(resource, self.namespace, obj)

    def _delete_objects(self, name: str) -> None:
        for resource in (ENDPOINTSLICES, PODS):
            with contextlib.suppress(NotFound):
                self.store.delete(resource, self.namespace, name)

    def _write_status(self, dep: dict[str, Any], replicas: int) -> None:
        name = str(dep["metadata"]["name"])
        views = [p.view for p in self._pods.values() if p.template.deployment == name]
        status = deployment_status(int(dep["metadata"].get("generation", 1)), replicas, views)
        if dep.get("status") == status:
            return

        def change(obj: dict[str, Any]) -> None:
            obj["status"] = status

        self.store.update(DEPLOYMENTS, self.namespace, name, change)

    def _note_scaling(self, name: str, replicas: int, exists: bool) -> None:
        seen = self._replicas_seen.get(name)
        if exists:
            self._replicas_seen[name] = replicas
        else:
            self._replicas_seen.pop(name, None)
        if exists and seen is not None and seen != replicas:
            way = "up" if replicas > seen else "down"
            message = f"Scaled {way} replica set {name} from {seen} to {replicas}"
            self._event(("apps/v1", "Deployment", name), "ScalingReplicaSet", message)

    def _event(
        self, involved: tuple[str, str, str], reason: str, message: str, warning: bool = False
    ) -> None:
        obj = event(self.namespace, involved, reason, message, _timestamp(), warning=warning)
        self.store.create(EVENTS, self.namespace, obj)
