"""deploy/images/Dockerfile installs the project wheel: no Docker engine here, so build that
wheel, check it holds every package, data file and console script, and run each entry point's
`--help` from the unpacked wheel (first on PYTHONPATH, from outside the source tree), so the
code that would be in the image is what runs."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "images" / "Dockerfile"
SCRIPTS = {
    "gateway": "gateway.main:main",
    "autoscaler": "autoscaler.main:main",
    "simpod": "loadtest.simpod.main:main",
    "loadtest": "loadtest.cli:main",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=120, cwd=out,
    )  # fmt: skip
    (whl,) = out.glob("inference_gateway-*.whl")
    return whl


def test_dockerfile_conventions() -> None:
    text = DOCKERFILE.read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[-1].startswith("FROM python:3.11-slim")
    runtime = text.split(stages[-1], 1)[1]
    assert "USER 65532:65532" in runtime
    assert "MPLCONFIGDIR=/tmp/matplotlib" in runtime
    assert "pip install --no-cache-dir" in runtime
    assert "ENTRYPOINT" in runtime
    for tool in ("gcc", "build-essential", "apt-get"):
        assert tool not in runtime, tool
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert {".venv", ".git", "reports", ".run"} <= set(ignored)
    for needed in ("pyproject.toml", "README.md", "gateway", "autoscaler", "protos", "loadtest"):
        assert needed not in ignored
        copies = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
        assert any(needed in srcs for srcs in copies), needed


def test_wheel_holds_every_package_and_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        eps = configparser.ConfigParser()
        eps.read_string(zf.read(f"{info}/entry_points.txt").decode())
        record = zf.read(f"{info}/RECORD").decode()
        requires = zf.read(f"{info}/METADATA").decode()
    assert dict(eps["console_scripts"]) == SCRIPTS
    for package in ("gateway", "autoscaler", "protos", "loadtest"):
        assert f"{package}/__init__.py" in names
        assert f"{package}/__init__.py," in record
    assert "loadtest/simpod/main.py" in names
    assert any(n.startswith("protos/") and n.endswith(".proto") for n in names)
    assert "loadtest/traces/files/diurnal.csv" in names
    # every dependency is pinned, so the image installs exactly what pyproject names
    deps = [line for line in requires.splitlines() if line.startswith("Requires-Dist:")]
    runtime_deps = [d for d in deps if "extra ==" not in d]
    assert runtime_deps and all("==" in d for d in runtime_deps)


def test_each_entry_point_runs_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    where = subprocess.run(
        [sys.executable, "-c", "import gateway, autoscaler; print(gateway.__file__)"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30,
    ).stdout  # fmt: skip
    assert where.startswith(str(site))
    for script, target in SCRIPTS.items():
        module, func = target.split(":")
        code = (
            f"import sys; sys.argv = [{script!r}, '--help']; from {module} import {func}; {func}()"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (script, done.stderr[-2000:])
        assert "usage:" in done.stdout.lower(), script
