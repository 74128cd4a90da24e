"""Start and stop the local stack's processes (simulated pods, the gateway) on free loopback ports.

Used by ``loadtest stack`` (``make run``), the benchmarks and the tests. It imports no project
proto module, so the tritonclient compatibility tests can use it too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "AutoscalerProc",
    "ControlPlaneProc",
    "GatewayProc",
    "PodProc",
    "Proc",
    "Served",
    "cpu_seconds",
    "dies_with_parent",
    "free_port",
    "running",
    "spawn",
    "start_autoscaler",
    "start_control_plane",
    "start_gateway",
    "start_pod",
    "wait_http",
]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ProcessExited(RuntimeError):
    """A process under test exited before it served."""


def wait_http(
    url: str,
    timeout_s: float = 30.0,
    proc: subprocess.Popen[bytes] | None = None,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Wait until ``url`` answers 200 (an https one checked with ``tls``); fail early if
    ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessExited(f"process exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=1.0, context=tls) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout_s} s: {last}")


@dataclass
class Proc:
    """A child process of the stack; stop() sends SIGTERM, then SIGKILL after a grace period."""

    name: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.popen.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, grace_s: float = 5.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return int(self.popen.returncode)


class Served:
    """The addresses of a process that serves HTTP and gRPC on loopback."""

    __slots__ = ()
    http_port: int
    grpc_port: int

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"


@dataclass
class PodProc(Proc, Served):
    """A simulated GPU pod."""

    grpc_port: int = 0
    http_port: int = 0


@dataclass
class _Configured(Proc):
    """A process started with a config file of its own, removed when it stops."""

    metrics_port: int = 0
    config_path: Path = field(default_factory=Path)

    def stop(self, grace_s: float = 8.0) -> int:
        code = super().stop(grace_s)
        self.config_path.unlink(missing_ok=True)
        return code

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"


@dataclass
class GatewayProc(_Configured, Served):
    """The gateway, with the config file it was started with."""

    http_port: int = 0
    grpc_port: int = 0


@dataclass
class AutoscalerProc(_Configured):
    """The autoscaler: load reports in on ``grpc_port``, metrics on ``metrics_port``."""

    grpc_port: int = 0

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"


_SETPRIV = shutil.which("setpriv")  # util-linux: on every Debian and most Linux machines


def dies_with_parent(cmd: Sequence[str]) -> list[str]:
    """``cmd`` set to get SIGTERM when its parent dies, so nothing outlives a killed test:
    ``setpriv --pdeathsig`` (which then execs it, keeping the pid), or ``cmd`` as it is where
    setpriv is missing.

    Not a ``preexec_fn``: that makes Python fork (not vfork) and run gRPC's fork handlers in the
    child, which since grpcio 1.81 can restart gRPC's poller there and abort the child before
    it execs when the parent is busy with gRPC (grpc/grpc#43055; once in five starts here)."""
    if _SETPRIV is None:
        return list(cmd)
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *cmd]


def spawn(cmd: list[str], stdout: Any) -> subprocess.Popen[bytes]:
    """Start a child in its own session (a terminal's Ctrl-C reaches only the parent, which
    stops its children in order) that dies with its parent."""
    return subprocess.Popen(
        dies_with_parent(cmd), stdout=stdout, stderr=stdout, start_new_session=True
    )


def _script(name: str) -> str:
    """The console script ``name`` installed beside this interpreter."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def start_pod(
    args: Sequence[str] = (),
    *,
    grpc_port: int | None = None,
    http_port: int | None = None,
    wait_ready: bool = True,
    stdout: Any = None,
    tls: ssl.SSLContext | None = None,
) -> PodProc:
    """Start ``simpod`` with ``args`` on free ports; wait until it answers HTTP live (over
    https, checked with ``tls``, for a pod given ``--tls-cert``)."""
    grpc_port = grpc_port or free_port()
    http_port = http_port or free_port()
    cmd = [_script("simpod"), "--host", HOST, "--grpc-port", str(grpc_port)]
    cmd += ["--http-port", str(http_port), *args]
    popen = spawn(cmd, stdout)
    pod = PodProc("simpod", popen, grpc_port, http_port)
    base = pod.http_url if tls is None else f"https://{HOST}:{http_port}"
    try:
        wait_http(f"{base}/v2/health/live", proc=popen, tls=tls)
        if wait_ready:
            wait_http(f"{base}/v2/health/ready", proc=popen, timeout_s=120, tls=tls)
    except BaseException:
        pod.stop()
        raise
    return pod


def start_gateway(
    models: list[dict[str, Any]],
    *,
    extra: dict[str, Any] | None = None,
    args: Sequence[str] = (),
    wait_models: bool = True,
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    stdout: Any = None,
    tls: ssl.SSLContext | None = None,
) -> GatewayProc:
    """Start the gateway on free ports with a config of ``models`` (the YAML ``models`` list).
    With ``tls`` (for a ``server.tls`` in ``extra``) its health is asked over https, the
    certificate checked with that context.

    With ``wait_models`` it returns once every model reports ready (a ready pod seen). A free
    port can be taken by another process between being picked and bound: a gateway that exits
    before it serves is started again on ports picked anew (twice at most), unless the caller
    chose the ports.
    """
    chosen = (http_port, grpc_port, metrics_port) != (None, None, None)
    for attempt in range(3):
        try:
            return _start_gateway_once(
                models, extra, args, wait_models, http_port, grpc_port, metrics_port, stdout, tls
            )
        except ProcessExited:
            if chosen or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_gateway_once(
    models: list[dict[str, Any]],
    extra: dict[str, Any] | None,
    args: Sequence[str],
    wait_models: bool,
    http_port: int | None,
    grpc_port: int | None,
    metrics_port: int | None,
    stdout: Any,
    tls: ssl.SSLContext | None = None,
) -> GatewayProc:
    http_port = http_port or free_port()
    grpc_port = grpc_port or free_port()
    metrics_port = metrics_port or free_port()
    extra = dict(extra or {})
    if "autoscaler" in extra and "peer_address" not in extra["autoscaler"]:
        # where the other replicas send it requests when it owns a pod they do not
        extra["autoscaler"] = {**extra["autoscaler"], "peer_address": f"{HOST}:{http_port}"}
    name = _config_file("gateway", {"models": models, **extra})
    cmd = [_script("gateway"), "--config", name, "--host", HOST]
    cmd += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    cmd += ["--metrics-port", str(metrics_port), *args]
    popen = spawn(cmd, stdout)
    gw = GatewayProc("gateway", popen, metrics_port, Path(name), http_port, grpc_port)
    base = gw.http_url if tls is None else f"https://{HOST}:{http_port}"
    try:
        wait_http(f"{base}/v2/health/live", proc=popen, tls=tls)
        if wait_models:
            for model in models:
                wait_http(f"{base}/v2/models/{model['name']}/ready", proc=popen, tls=tls)
    except BaseException:
        gw.stop()
        raise
    return gw


def start_autoscaler(
    config: dict[str, Any],
    *,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    stdout: Any = None,
) -> AutoscalerProc:
    """Start the autoscaler with ``config`` (its YAML document; ``server`` is set here, on
    loopback and free ports unless given); return once it serves its health endpoint."""
    grpc_port = grpc_port or free_port()
    metrics_port = metrics_port or free_port()
    server = {"host": HOST, "grpc_port": grpc_port, "metrics_port": metrics_port}
    name = _config_file("autoscaler", {**config, "server": server})
    popen = spawn([_script("autoscaler"), "--config", name], stdout)
    proc = AutoscalerProc("autoscaler", popen, metrics_port, Path(name), grpc_port)
    try:
        wait_http(f"http://{HOST}:{metrics_port}/healthz", proc=popen)
    except BaseException:
        proc.stop()
        raise
    return proc


@dataclass
class ControlPlaneProc(Proc):
    """``loadtest control-plane``: the API double and its kubelet, reached by ``kubeconfig``."""

    kubeconfig: Path = field(default_factory=Path)

    def stop(self, grace_s: float = 30.0) -> int:  # its pods drain first
        return super().stop(grace_s)


def start_control_plane(
    kubeconfig: Path, args: Sequence[str] = (), *, stdout: Any = None, timeout_s: float = 30.0
) -> ControlPlaneProc:
    """Start ``loadtest control-plane`` (``args``: its options) writing ``kubeconfig``; return
    once that file exists (it is written whole, after the server listens)."""
    kubeconfig.unlink(missing_ok=True)
    cmd = [_script("loadtest"), "control-plane", "--kubeconfig-out", str(kubeconfig), *args]
    proc = ControlPlaneProc("control-plane", spawn(cmd, stdout), kubeconfig)
    deadline = time.monotonic() + timeout_s
    try:
        while not kubeconfig.exists():
            if proc.popen.poll() is not None:
                raise RuntimeError(f"control-plane exited with {proc.popen.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kubeconfig} within {timeout_s:g} s")
            time.sleep(0.05)
    except BaseException:
        proc.stop()
        raise
    return proc


def _config_file(prefix: str, config: dict[str, Any]) -> str:
    """``config`` as a YAML file of its own; its path."""
    fd, name = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh)
    return name


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[tuple[Proc, ...]]:
    """Stop every process on exit, in reverse order."""
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()
