"""``loadtest trace`` end to end, at low rates: against the stack it starts itself (one pod of a
known fixed service time) it writes the JSON with per-second series and scraped metrics, and
the plots; the served rate follows a step; and it can point at a stack that is already running.
Nothing about speed: the rates are far below what the machine serves."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from loadtest.cli import main
from loadtest.stack.procs import running, start_gateway, start_pod
from loadtest.traces.run import TraceConfig, run_trace
from loadtest.traces.shapes import step

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)

FIXED_MS = 5
SECONDS = 6


@pytest.fixture(scope="module")
def step_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("trace-step")
    code = main(
        [
            "trace",
            "--trace",
            "step",
            "--base-rate",
            "60",
            "--peak-rate",
            "120",
            "--duration",
            str(SECONDS),
            "--warmup",
            "0.5",
            "--pods",
            "1",
            "--fixed-ms",
            str(FIXED_MS),
            "--per-row-ms",
            "0",
            "--out",
            str(out),
        ]
    )
    return code, out, json.loads((out / "report.json").read_text())


def test_the_run_writes_a_report_with_a_series_per_second(
    step_run: tuple[int, Path, dict[str, Any]],
) -> None:
    code, _out, doc = step_run
    assert code == 0
    assert doc["load"]["errors"] == {}, doc["load"]["error_sample"]
    assert [s["second"] for s in doc["seconds"]] == list(range(SECONDS))
    assert [p["phase"] for p in doc["summary"]] == ["overall", "before", "after"]
    assert doc["summary"][0]["ok"] == doc["load"]["ok"] > 0
    assert doc["summary"][0]["latency_us"]["p50_us"] >= FIXED_MS * 1000
    for second in doc["seconds"]:
        assert second["ok"] == second["due"]
        assert second["latency_us"]["p50"] >= FIXED_MS * 1000


def test_the_report_holds_scraped_gateway_and_pod_metrics_and_cpu(
    step_run: tuple[int, Path, dict[str, Any]],
) -> None:
    _code, _out, doc = step_run
    assert doc["metrics_kinds"] == {"gateway": "gateway", "pod0": "pod"}
    seconds = [s for s in doc["seconds"] if s["metrics"]]
    assert len(seconds) >= SECONDS - 1
    gateway = [s["metrics"]["gateway"] for s in seconds]
    assert all(g["queue_requests"] is not None for g in gateway)
    assert all(g["replicas"] == 1.0 for g in gateway)
    assert sum(g["batches"] or 0 for g in gateway) > 0
    assert any((s["metrics"]["pod0"]["success_per_s"] or 0) > 0 for s in seconds)
    assert all(set(s["cpu_s"]) == {"gateway", "pod0"} for s in seconds)
    assert sum(s["cpu_s"]["gateway"] for s in seconds) > 0


def test_the_served_rate_follows_the_step(step_run: tuple[int, Path, dict[str, Any]]) -> None:
    _code, _out, doc = step_run
    before, after = doc["summary"][1], doc["summary"][2]
    assert before["offered_rps"] == 60.0 and after["offered_rps"] == 120.0
    assert 1.6 < after["served_rps"] / before["served_rps"] < 2.4
    # Goodput counts answers within the SLO: some, never more than served. (Not "all": on a
    # loaded machine one answer of a 5 ms pod may still miss a 50 ms SLO.)
    assert 0 < after["goodput_rps"] <= after["served_rps"]


def test_the_plots_are_png_files(step_run: tuple[int, Path, dict[str, Any]]) -> None:
    _code, out, doc = step_run
    for name in ("latency.png", "throughput.png", "server.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 300 and height > 300
        assert str(out / name) in doc["files"]


def test_a_trace_spreads_over_gateway_replicas_and_scrapes_each(tmp_path: Path) -> None:
    argv = ["trace", "--trace", "step", "--base-rate", "40", "--peak-rate", "80"]
    argv += ["--duration", "3", "--warmup", "0.3", "--pods", "1", "--gateways", "2"]
    argv += ["--fixed-ms", str(FIXED_MS), "--per-row-ms", "0", "--out", str(tmp_path), "--no-plots"]
    code = main(argv)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert code == 0 and doc["load"]["errors"] == {}, doc["load"]["error_sample"]
    assert doc["metrics_kinds"] == {"gateway": "gateway", "gateway1": "gateway", "pod0": "pod"}
    assert doc["config"]["stack"]["gateways"] == 2
    assert doc["config"]["processes"] == 1 and doc["load"]["processes"] == 2
    # Both replicas took a share (two generator processes, one each); with one pod the first
    # owns it and batches the other's requests too (gateway/routing/forward.py).
    assert sum(s["metrics"]["gateway"]["batches"] or 0 for s in doc["seconds"] if s["metrics"]) > 0


def test_a_trace_runs_against_a_stack_that_is_already_up(tmp_path: Path) -> None:
    pod = start_pod(["--fixed-ms", str(FIXED_MS), "--per-row-ms", "0", "--log-level", "WARNING"])
    with running(pod):
        gateway = start_gateway([{"name": "sim", "endpoints": [pod.grpc_address]}])
        with running(gateway):
            config = TraceConfig(
                trace=step(40.0, 80.0, 2.0),
                protocol="grpc",
                processes=0,
                warmup_s=0.2,
                target=gateway.grpc_address,
                metrics=(f"{pod.http_url}/metrics", gateway.metrics_url),
                pids=(("gateway", gateway.pid),),
                out_dir=tmp_path,
                plots=False,
            )
            run = run_trace(config)
    assert run.result.ok > 0 and run.result.error_count == 0
    assert run.doc["metrics_kinds"] == {"pod0": "pod", "gateway": "gateway"}
    assert (tmp_path / "report.json").exists()
    assert not (tmp_path / "latency.png").exists()
    assert any(s["cpu_s"] and s["cpu_s"]["gateway"] is not None for s in run.doc["seconds"])
