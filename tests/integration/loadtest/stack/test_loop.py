"""``loadtest stack`` (``make run``) as a real process: the whole loop serves the printed curl,
kubectl sees its objects, and SIGINT stops everything, the pods included."""

from __future__ import annotations

import importlib.util
import json
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from loadtest.stack.procs import free_port
from tests.integration.loadtest.control_plane.plane_wait import alive

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None
    or importlib.util.find_spec("gateway.main") is None,
    reason="simpod or gateway not built yet",
)

LOADTEST = str(Path(sys.executable).parent / "loadtest")


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_until(lines: queue.Queue[str], marker: str, timeout_s: float) -> list[str]:
    """Lines up to the first that holds ``marker`` (with marker "": to the end of the output)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if (marker in line) if marker else (line == ""):
            return seen
    raise AssertionError(f"no {marker!r} in the output:\n{''.join(seen)}")


def _post_like_curl(curl: str) -> dict[str, object]:
    """Send the request the printed curl command describes (without needing curl)."""
    words = shlex.split(curl)
    url = next(w for w in words if w.startswith("http://"))
    req = urllib.request.Request(
        url.replace("localhost", "127.0.0.1"),
        data=words[words.index("-d") + 1].encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, object] = json.loads(resp.read())
    return doc


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_the_loop_serves_the_printed_curl_shows_in_kubectl_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    http_port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    ports = ["--http-port", str(http_port), "--grpc-port", str(free_port())]
    ports += ["--metrics-port", str(free_port())]
    ports += ["--autoscaler-grpc-port", str(free_port())]
    ports += ["--autoscaler-metrics-port", str(free_port())]
    cmd = [LOADTEST, "stack", *ports, "--kubeconfig", str(kubeconfig), "--startup-s", "0.2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _lines(proc)
        banner = "".join(_read_until(lines, "Ctrl-C stops everything", 90))
        printed = [line.strip() for line in banner.splitlines()]
        curl = next(line for line in printed if line.startswith("curl"))
        assert f"localhost:{http_port}/v2/models/sim/infer" in curl
        answer = _post_like_curl(curl)
        outputs = answer["outputs"]
        assert isinstance(outputs, list)
        assert [float(x) for x in outputs[0]["data"]] == [2.0 * i for i in range(16)]
        assert any(line.startswith(".venv/bin/loadtest trace --target") for line in printed)
        kubectl = next(line for line in printed if line.startswith("kubectl") and "get dep" in line)
        if shutil.which("kubectl"):
            shown = subprocess.run(
                shlex.split(kubectl), capture_output=True, text=True, timeout=60, check=True
            ).stdout
            assert "deployment.apps/sim" in shown and "endpointslice" in shown
        plane = int(re.findall(r"control plane .*\(pid (\d+)\)", banner)[0])
        pods = _children(plane)
        assert pods, "the control plane runs the Deployment's pod"

        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0
        output = banner + "".join(_read_until(lines, "", 10))  # to the end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stopped = re.findall(r"stopped ([\w-]+) \(pid (\d+)", output)
    assert [name for name, _ in stopped] == ["gateway", "autoscaler", "control-plane"]
    assert not [pid for _, pid in stopped if alive(int(pid))]
    assert not [pid for pid in pods if alive(pid)], "a pod outlived the stack"
