"""Start and stop a real ``tritonserver`` (the one the ``nvidia-pytriton`` wheel bundles).

``make test`` installs the wheel into ``.venv-triton`` (its own environment: pytriton needs
numpy < 2 and tritonclient ~= 2.50, which clash with the project's pins). Triton serves the
models of a model repository through its Python backend, on CPU. Like ``procs`` this module
imports no project proto module, so the tritonclient compatibility tests can use it.

Two things the wheel leaves to its caller, done here:

- the Python backend looks for its stub beside ``libtriton_python.so``; the wheel keeps one stub
  per Python version elsewhere, so a backend directory with the right one is assembled once
  (``.venv-triton/triton-backends``);
- the stub links the first ``libpython3.X.so.1.0`` on the loader path; when that is another build
  than the environment's interpreter (a system 3.11.2 beside a pyenv 3.11.7), models fail to
  load with ``'_thread.RLock' object has no attribute '_recursion_count'``. The interpreter's own
  ``LIBDIR`` goes first on ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.stack.procs import HOST, Proc, Served, dies_with_parent, free_port, wait_http

__all__ = [
    "MODEL_REPOSITORY",
    "TritonInstall",
    "TritonProc",
    "find_triton",
    "start_triton",
    "triton_available",
]

_ROOT = Path(__file__).resolve().parents[2]
# The project's own model repository: ``sim`` and the ``identity_<datatype>`` models.
MODEL_REPOSITORY = _ROOT / "tests" / "triton" / "models"
# Where ``make test`` installs nvidia-pytriton; TRITON_VENV overrides it.
DEFAULT_VENV = _ROOT / ".venv-triton"


@dataclass(frozen=True)
class TritonInstall:
    """The pieces of an installed nvidia-pytriton wheel that starting Triton needs."""

    venv: Path
    python_version: str  # "3.11"
    libdir: str  # the environment's interpreter's sysconfig LIBDIR (where its libpython is)

    @property
    def dist(self) -> Path:
        """``pytriton/tritonserver`` inside the wheel: ``bin``, ``backends``, the stubs."""
        site = self.venv / "lib" / f"python{self.python_version}" / "site-packages"
        return site / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.dist / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        """The wheel's bundled shared libraries (auditwheel's ``nvidia_pytriton.libs``)."""
        return self.dist.parents[1] / "nvidia_pytriton.libs"

    @property
    def stub(self) -> Path:
        return (
            self.dist / "python_backend_stubs" / self.python_version / "triton_python_backend_stub"
        )

    def env(self) -> dict[str, str]:
        """The environment Triton runs in: the LIBDIR fix, the wheel's libraries, and the venv's
        ``bin`` first on PATH (the stub's embedded interpreter finds the venv's numpy so)."""
        env = dict(os.environ)
        paths = [self.libdir, str(self.libs), *filter(None, [env.get("LD_LIBRARY_PATH")])]
        env["LD_LIBRARY_PATH"] = ":".join(paths)
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return env


def _venv() -> Path:
    return Path(os.environ.get("TRITON_VENV") or DEFAULT_VENV)


@functools.cache
def _probe(venv: Path) -> TritonInstall | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    code = "import sys, sysconfig; print(sysconfig.get_config_var('LIBDIR')); "
    code += "print(f'{sys.version_info[0]}.{sys.version_info[1]}')"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    install = TritonInstall(venv, python_version=lines[1], libdir=lines[0])
    return install if install.binary.exists() and install.stub.exists() else None


def find_triton() -> TritonInstall | None:
    """The installed wheel (in ``TRITON_VENV`` or ``.venv-triton``), or None."""
    return _probe(_venv())


@functools.cache
def _runs(binary: Path, env_key: tuple[tuple[str, str], ...]) -> str | None:
    """None when ``tritonserver --help`` runs; else why not."""
    try:
        out = subprocess.run(
            [str(binary), "--help"], capture_output=True, env=dict(env_key), timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} does not run: {exc}"
    if b"--model-repository" not in out.stdout + out.stderr:
        tail = (out.stdout + out.stderr).decode(errors="replace")[-500:]
        return f"{binary} --help exited with {out.returncode}: {tail}"
    return None


def triton_problem() -> str | None:
    """None when Triton can be started here; else the reason it cannot (for a skip)."""
    install = find_triton()
    if install is None:
        return f"no nvidia-pytriton in {_venv()} (make test installs it)"
    return _runs(install.binary, tuple(sorted(install.env().items())))


def triton_available() -> bool:
    """The bundled ``tritonserver`` exists and runs."""
    return triton_problem() is None


def backend_directory(install: TritonInstall) -> Path:
    """A backend directory whose ``python`` backend has the stub of the venv's Python beside it;
    assembled once in the venv (atomically, so concurrent starts agree)."""
    target = install.venv / "triton-backends"
    if (target / "python" / "triton_python_backend_stub").exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".triton-backends-", dir=install.venv))
    staging.chmod(0o755)
    try:
        shutil.copytree(install.dist / "backends" / "python", staging / "python")
        shutil.copy2(install.stub, staging / "python" / "triton_python_backend_stub")
        try:
            staging.rename(target)
        except OSError:  # another start got there first
            if not (target / "python" / "triton_python_backend_stub").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass
class TritonProc(Proc, Served):
    """A ``tritonserver`` process on loopback."""

    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal Triton's whole process group: its Python backend stubs too, which a killed
        Triton would otherwise leave running (orphans, holding their shared memory)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace_s: float = 15.0) -> int:  # Triton unloads its models first
        code = super().stop(grace_s)
        self.kill()  # any stub left behind
        return code


def start_triton(
    model_repository: Path | str = MODEL_REPOSITORY,
    *,
    grpc_port: int | None = None,
    http_port: int | None = None,
    metrics_port: int | None = None,
    args: tuple[str, ...] = (),
    stdout: Any = None,
    timeout_s: float = 180.0,
) -> TritonProc:
    """Start ``tritonserver`` on free loopback ports serving every model of
    ``model_repository`` (``--model-control-mode=none``); return once it reports
    ``/v2/health/ready`` (every model loaded). Raises RuntimeError when it is not installed."""
    install = find_triton()
    if install is None:
        raise RuntimeError(triton_problem() or "Triton is not installed")
    grpc_port = grpc_port or free_port()
    http_port = http_port or free_port()
    metrics_port = metrics_port or free_port()
    cmd = [str(install.binary), f"--model-repository={Path(model_repository).resolve()}"]
    cmd += ["--model-control-mode=none", f"--backend-directory={backend_directory(install)}"]
    for api, port in (("grpc", grpc_port), ("http", http_port), ("metrics", metrics_port)):
        cmd += [f"--{api}-address={HOST}", f"--{api}-port={port}"]
    cmd += ["--allow-gpu-metrics=false", "--strict-readiness=true", "--exit-timeout-secs=10"]
    popen = subprocess.Popen(
        dies_with_parent([*cmd, *args]),
        stdout=stdout,
        stderr=stdout,
        env=install.env(),
        start_new_session=True,
    )
    proc = TritonProc("tritonserver", popen, grpc_port, http_port, metrics_port)
    try:
        wait_http(f"{proc.http_url}/v2/health/ready", timeout_s=timeout_s, proc=popen)
    except BaseException:
        proc.stop()
        raise
    return proc
