"""``loadtest goodput --target``: the sweep against a server it did not start (here a simpod),
its CPU read by pid, its report written. Nothing about speed: the rates are tiny."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.benches.goodput import GoodputConfig, run_goodput
from loadtest.stack.procs import start_pod


def test_a_sweep_runs_against_a_running_server(tmp_path: Path) -> None:
    pod = start_pod(["--fixed-ms", "2", "--per-row-ms", "0"])
    try:
        config = GoodputConfig(
            target=pod.http_url,
            target_limit_rows_s=400.0,
            target_pids=(("pod", pod.pid),),
            grid=(0.05, 0.1),
            refine=0,
            duration_s=0.5,
            warmup_s=0.2,
            json_path=tmp_path / "goodput.json",
        )
        [sweep] = run_goodput(config)
    finally:
        pod.stop()
    assert sorted({s.fraction for s in sweep.steps}) == [0.05, 0.1]  # (plus any reruns)
    assert sweep.goodput is not None and sweep.goodput.ok > 0
    doc = json.loads((tmp_path / "goodput.json").read_text())
    [saved] = doc["sweeps"]
    assert saved["mode"] == "target" and saved["physical_limit_rows_s"] == 400.0
    # The pod's CPU is read by its pid in every step (a wrong pid fails the run). Not "> 0":
    # /proc counts whole clock ticks, and 10 tiny requests may use less than one.
    assert all(step["cpu_s"]["pod"] >= 0 for step in saved["steps"])
    assert doc["config"]["target"] == pod.http_url


def test_a_target_without_a_limit_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="rows/s"):
        GoodputConfig(target="http://127.0.0.1:1")
