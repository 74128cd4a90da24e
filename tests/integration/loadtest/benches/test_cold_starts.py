"""``loadtest cold-starts``: a baseline and two starts of two gateways in front of one fast
simulated pod, 1 s each; the report has a record per run with each replica's figures, every run
came from processes of its own (no pid seen twice), and the exit code agrees with the report's
verdicts. Nothing about speed: whether a start collapsed is not asserted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from loadtest.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)


def test_every_start_runs_on_a_fresh_stack_and_the_report_has_each_replicas_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "cold-starts.json"
    argv = ["cold-starts", "--starts", "2", "--gateways", "2", "--duration", "1"]
    argv += ["--fraction", "0.1", "--fixed-ms", "5", "--per-row-ms", "0", "--max-batch", "4"]
    code = main([*argv, "--json", str(report)])
    doc = json.loads(report.read_text())

    assert doc["benchmark"] == "cold-starts"
    baseline, starts = doc["baseline"], doc["starts"]
    assert (baseline["label"], baseline["gateways"]) == ("baseline", 1)
    assert [(s["label"], s["gateways"]) for s in starts] == [("start 1", 2), ("start 2", 2)]
    assert [g["name"] for g in baseline["per_gateway"]] == ["gateway"]
    assert set(baseline["pids"]) == {"gateway", "pod0"}  # one gateway: no coordinator
    for start in starts:
        assert set(start["pids"]) == {"gateway", "gateway1", "coordinator", "pod0"}
        assert [g["name"] for g in start["per_gateway"]] == ["gateway", "gateway1"]
        assert all(g["requests"] > 0 for g in start["per_gateway"])  # the load was spread
        assert start["ok"] > 0 and start["gone"] == ""
        assert isinstance(start["collapsed"], bool)
    pids = [pid for run in (baseline, *starts) for pid in run["pids"].values()]
    assert len(set(pids)) == len(pids)  # nothing kept between runs

    assert code == (1 if doc["collapsed"] else 0)
    assert doc["collapsed"] == sum(s["collapsed"] for s in starts)
    out = capsys.readouterr().out
    assert "Cold starts" in out and "starts collapsed" in out
