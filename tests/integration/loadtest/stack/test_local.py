"""``loadtest stack`` as a real process: it serves, its curl works, SIGINT stops everything."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from loadtest.stack.procs import free_port

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None
    or importlib.util.find_spec("gateway.main") is None,
    reason="simpod or gateway not built yet",
)

LOADTEST = str(Path(sys.executable).parent / "loadtest")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pod_base_port(pods: int) -> int:
    """A base port B with B+10i and B+10i+1 free for every pod i."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000, 10)
        if all(_free(base + 10 * i + j) for i in range(pods) for j in (0, 1)):
            return base
    raise RuntimeError("no free port range found")


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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


def test_stack_serves_the_printed_curl_and_stops_cleanly_on_sigint() -> None:
    http_port = free_port()
    cmd = [
        LOADTEST,
        "stack",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--pod-base-port",
        str(_pod_base_port(2)),
        "--fixed-ms",
        "1",
        "--per-row-ms",
        "0.01",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _lines(proc)
        banner = "".join(_read_until(lines, "Ctrl-C stops everything", 90))
        curl = next(line.strip() for line in banner.splitlines() if line.strip().startswith("curl"))
        assert f"localhost:{http_port}/v2/models/sim/infer" in curl
        answer = _post_like_curl(curl)
        outputs = answer["outputs"]
        assert isinstance(outputs, list)
        assert [float(x) for x in outputs[0]["data"]] == [2.0 * i for i in range(16)]

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        output = banner + "".join(_read_until(lines, "", 10))  # to the end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stopped = re.findall(r"stopped (\w+) \(pid (\d+)", output)
    assert [name for name, _ in stopped] == ["gateway", "simpod", "simpod"]
    assert not [pid for _, pid in stopped if _alive(int(pid))]
