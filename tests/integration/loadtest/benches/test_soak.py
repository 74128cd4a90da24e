"""``loadtest soak`` for a few seconds against a stack of its own (a fast simulated pod behind
a gateway): the report's structure, bad requests refused, disconnects made, nothing good lost.
Nothing about slopes, speed or timing: the rate is small and the windows short."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.benches.soak import SoakConfig, run_soak
from loadtest.benches.soak_mix import DISCONNECT_WIRES


def test_a_short_soak_refuses_bad_requests_survives_disconnects_and_loses_nothing(
    tmp_path: Path,
) -> None:
    config = SoakConfig(
        duration_s=3.0,
        interval_s=1.0,
        warmup_s=0.5,
        fraction=0.1,  # 200 req/s of a 2,000 rows/s pod
        pods=1,
        fixed_ms=2.0,  # no answer before 2 ms: some disconnects (0-10 ms) always cut first
        per_row_ms=0.0,
        max_batch=4,
        bad_share=0.1,
        disconnect_share=0.1,
        processes=1,
        timeout_s=5.0,
        json_path=tmp_path / "soak.json",
    )
    run = run_soak(config)
    doc = json.loads((tmp_path / "soak.json").read_text())

    assert doc["benchmark"] == "soak" and doc["processes"] == ["gateway", "pod0"]
    assert [i["interval"] for i in doc["intervals"]] == [0, 1, 2]
    for interval in doc["intervals"]:
        gateway = interval["resources"]["gateway"]
        assert gateway["rss_bytes"] > 0 and gateway["fds"] > 0
        assert gateway["tasks"] >= 1  # the gateway_event_loop_tasks gauge is served
        assert interval["resources"]["pod0"]["rss_bytes"] > 0
        assert interval["requests"]["good"].get("ok", 0) > 0
    assert {(t["process"], t["metric"]) for t in doc["trends"]} >= {
        ("gateway", "rss_bytes"),
        ("gateway", "fds"),
        ("gateway", "tasks"),
        ("pod0", "rss_bytes"),
        ("pod0", "fds"),
    }
    assert all("flat" in t and "slope_per_min" in t for t in doc["trends"])

    totals = doc["totals"]["requests"]
    good, bad, cut = totals["good"], totals["bad"], totals["disconnect"]
    assert good.get("ok", 0) > 0
    assert good.get("lost", 0) == 0 and good.get("failed", 0) == 0 and doc["totals"]["unsent"] == 0
    assert bad.get("expected", 0) > 0 and bad.get("wrong", 0) == 0
    lanes = doc["totals"]["lanes"]
    for name in (n for n in lanes if n.startswith("bad ")):
        assert lanes[name]["outcomes"].get("expected", 0) > 0, name
    assert cut.get("cut", 0) > 0 and cut.get("error", 0) == 0
    for wire in DISCONNECT_WIRES:
        assert sum(lanes[f"disconnect {wire}"]["outcomes"].values()) > 0
    assert not [r for r in run.reasons if "request" in r]  # only a slope may fail a short run
