"""The local control plane in-process: the API double, a namespace, a Deployment and the kubelet."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadtest.control_plane.kubelet import Kubelet
from loadtest.control_plane.spec import Defaults
from loadtest.kube_api.objects import DEPLOYMENTS, NAMESPACES, deployment, write_kubeconfig
from loadtest.kube_api.server import KubeApiServer
from loadtest.kube_api.store import AlreadyExists

__all__ = ["ControlPlane"]


class ControlPlane:
    """``async with ControlPlane(namespace="models") as cp``: the API double on a loopback port
    (``port`` 0: a free one) and a kubelet running the pods of every Deployment in
    ``namespace``; on exit every pod is stopped, then the server."""

    def __init__(
        self,
        *,
        namespace: str = "models",
        defaults: Defaults | None = None,
        port: int = 0,
        tick_s: float = 0.1,
        pod_stdout: Any = None,
    ) -> None:
        self.namespace = namespace
        self.api = KubeApiServer()
        self.kubelet = Kubelet(
            self.api.store,
            namespace=namespace,
            defaults=defaults,
            tick_s=tick_s,
            pod_stdout=pod_stdout,
        )
        self._port = port

    @property
    def url(self) -> str:
        return self.api.url

    async def start(self) -> None:
        """Serve, create the namespace, and start the kubelet."""
        await self.api.start(self._port)
        try:
            with contextlib.suppress(AlreadyExists):
                namespace = {"kind": "Namespace", "apiVersion": "v1"}
                self.api.store.create(
                    NAMESPACES, "", {**namespace, "metadata": {"name": self.namespace}}
                )
            await self.kubelet.start()
        except BaseException:
            await self.api.stop()
            raise

    async def stop(self) -> None:
        """Stop every pod (SIGTERM, then SIGKILL after its grace period), then the server."""
        try:
            await self.kubelet.stop()
        finally:
            await self.api.stop()

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig at ``path`` whose context is this server and namespace; written whole
        (a file beside it, then renamed), so a process waiting for ``path`` never reads half."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = write_kubeconfig(
            path.with_name(f".{path.name}.partial"), self.url, self.namespace
        )
        return partial.replace(path)

    def add_deployment(
        self,
        name: str,
        replicas: int = 1,
        *,
        annotations: Mapping[str, str] | None = None,
        grace_s: float | None = None,
    ) -> dict[str, Any]:
        """Create a Deployment ``name`` (pods labelled ``app: name``); ``annotations`` such as
        ``sim.loadtest/fixed-ms`` set its pods' cost shape, ``grace_s`` their grace period."""
        obj = deployment(name, replicas, {"app": name})
        if annotations:
            obj["metadata"]["annotations"] = dict(annotations)
        if grace_s is not None:
            obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = grace_s
        return self.api.store.create(DEPLOYMENTS, self.namespace, obj)
