"""``loadtest autoscale --quick`` runs one trace under one policy against the real loop and
writes a report of the documented shape. Its figures mean nothing and are not checked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from loadtest.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None
    or importlib.util.find_spec("gateway.main") is None
    or importlib.util.find_spec("autoscaler.main") is None,
    reason="simpod, gateway or autoscaler not built yet",
)

FIGURES = {
    "slo_ms",
    "slo_violation_s",
    "rejected_429",
    "errors",
    "due",
    "ok",
    "replica_s",
    "ready_pod_s",
    "scale_changes",
    "replica_changes_seen",
    "max_replicas",
    "reaction",
}


def test_autoscale_quick_writes_a_report_and_a_plot(tmp_path: Path) -> None:
    argv = ["autoscale", "--quick", "--traces", "step", "--policies", "capacity"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "autoscale.json").read_text())
    assert doc["benchmark"] == "autoscale"
    assert [(r["trace"], r["policy"]) for r in doc["runs"]] == [("step", "capacity")]
    run = doc["runs"][0]
    assert set(run["figures"]) == FIGURES
    assert set(run["figures"]["reaction"]) >= {"rise_s", "to_first_patch_s", "to_capacity_s"}
    assert len(run["seconds"]) == 8
    assert run["samples"]["columns"] == ["at_s", "replicas", "ready", "patched"]
    assert run["samples"]["rows"], "the Deployment was never sampled"
    assert Path(run["plot"]).is_file()
