"""``loadtest control-plane`` as a real process: it serves a Deployment's pod, SIGTERM stops all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.integration.loadtest.control_plane.plane_wait import BOUND_S, alive

LOADTEST = str(Path(sys.executable).parent / "loadtest")


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started them."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    return sorted(int(p) for task in tasks for p in task.read_text().split())


def ready_pods(server: str) -> int:
    url = f"{server}/apis/apps/v1/namespaces/models/deployments/sim"
    with urllib.request.urlopen(url, timeout=BOUND_S) as r:
        return int(json.loads(r.read()).get("status", {}).get("readyReplicas") or 0)


def test_it_runs_the_deployment_and_sigterm_stops_every_pod(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "run" / "kubeconfig"
    cmd = [LOADTEST, "control-plane", "--kubeconfig-out", str(kubeconfig), "--replicas", "2"]
    cmd += ["--startup-s", "0.2", "--grace-s", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pods: list[int] = []
    try:
        end = time.monotonic() + BOUND_S
        while not kubeconfig.exists() and time.monotonic() < end:
            assert proc.poll() is None, "it exited"
            time.sleep(0.05)
        assert kubeconfig.exists(), f"no kubeconfig within {BOUND_S} s"
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        while ready_pods(server) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert ready_pods(server) == 2
        pods = children(proc.pid)
        assert len(pods) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(BOUND_S) == 0
        assert not [pid for pid in pods if alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
