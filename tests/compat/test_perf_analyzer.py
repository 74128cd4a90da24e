"""Triton's perf_analyzer (the official C++ client) against the gateway, HTTP and gRPC.

perf_analyzer is installed by ``make test`` / ``make test-compat``. When it is missing, this test
fails (it does not skip): a compatibility run without it has not checked the C++ client.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from _compat import Target

REPO = Path(__file__).resolve().parents[2]
PERF_ANALYZER = Path(sys.executable).parent / "perf_analyzer"
INSTALL_HINT = (
    "install it with `make .venv/bin/perf_analyzer` or "
    "`../shared/tools/install-perf-analyzer .venv .venv/bin/python` (from the repository root; "
    "if the tritonclient wheel left its bare binary at .venv/bin/perf_analyzer, make thinks it "
    "is installed: run the install script directly)"
)
CONCURRENCY = range(1, 9)
TIMEOUT_S = 100


def perf_analyzer() -> str:
    if not PERF_ANALYZER.exists():
        pytest.fail(f"perf_analyzer not found at {PERF_ANALYZER}: {INSTALL_HINT}")
    try:
        probe = subprocess.run(
            [str(PERF_ANALYZER), "--version"], capture_output=True, text=True, timeout=30
        )
    except OSError as exc:
        pytest.fail(f"perf_analyzer at {PERF_ANALYZER} cannot run ({exc}): {INSTALL_HINT}")
    if probe.returncode != 0 or "Perf Analyzer" not in probe.stdout + probe.stderr:
        pytest.fail(
            f"perf_analyzer at {PERF_ANALYZER} is broken "
            f"({(probe.stdout + probe.stderr).strip()[:300]}): {INSTALL_HINT}"
        )
    return str(PERF_ANALYZER)


def test_perf_analyzer_installed() -> None:
    perf_analyzer()


def _command(exe: str, url: str, protocol: str, concurrency: range) -> list[str]:
    return [
        exe,
        "-m", "sim",
        "-u", url,
        "-i", protocol,
        "--shape", "INPUT0:16",
        "--concurrency-range", f"{concurrency.start}:{concurrency.stop - 1}",
        "--measurement-interval", "1000",
        # Bound the run on a noisy shared host: take 3 windows as stable, 5 trials at most.
        "--stability-percentage", "1000",
        "--max-trials", "5",
    ]  # fmt: skip


class Run:
    """One perf_analyzer process, its output in a temporary file."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, cwd=REPO)
        self.started = time.monotonic()

    def wait(self) -> tuple[int | None, str]:
        """Exit status (None when it ran past TIMEOUT_S and was killed) and output."""
        try:
            code: int | None = self.proc.wait(
                max(1.0, TIMEOUT_S - (time.monotonic() - self.started))
            )
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.out.seek(0)
        return code, self.out.read().decode(errors="replace")

    def problems(self, concurrency: range) -> list[str]:
        code, output = self.wait()
        found = []
        if code is None:
            found.append(f"ran past {TIMEOUT_S} s")
        elif code != 0:
            found.append(f"exit status {code}")
        if "error" in output.lower():
            found.append("'error' in its output")
        for c in concurrency:
            if not re.search(
                rf"^Concurrency: {c}, throughput: [0-9.]+ infer/sec, latency [0-9]+ usec",
                output,
                re.MULTILINE,
            ):
                found.append(f"no throughput line for concurrency {c}")
        if found:
            found.append(f"command: {' '.join(self.cmd)}\n{output[-3000:]}")
        return found


@pytest.fixture(scope="module")
def gateway_runs(gw_target: Target) -> Iterator[dict[str, Run]]:
    """Both protocols' runs, started together (about 30 s in all instead of 60)."""
    exe = perf_analyzer()
    runs = {
        "http": Run(_command(exe, gw_target.http, "http", CONCURRENCY)),
        "grpc": Run(_command(exe, gw_target.grpc, "grpc", CONCURRENCY)),
    }
    yield runs
    kill_unfinished(runs.values())


def kill_unfinished(runs: Iterable[Run]) -> None:
    """Kill the runs still going (a failed test leaves none behind)."""
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


@pytest.mark.timeout(2 * TIMEOUT_S + 30)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer(gateway_runs: dict[str, Run], protocol: str, pod_direct: Target) -> None:
    problems = gateway_runs[protocol].problems(CONCURRENCY)
    if not problems:
        return
    # Tell who is at fault: the same client, briefly, against the pod directly.
    short = range(1, 3)
    url = pod_direct.http if protocol == "http" else pod_direct.grpc
    direct = Run(_command(perf_analyzer(), url, protocol, short)).problems(short)
    verdict = (
        "direct to the pod it PASSES, so the gateway is at fault"
        if not direct
        else "direct to the pod it fails too:\n" + "\n".join(direct)
    )
    pytest.fail(
        f"perf_analyzer -i {protocol} against the gateway: "
        + "; ".join(problems[:-1])
        + f"\n{verdict}\n--- gateway run ---\n{problems[-1]}"
    )
