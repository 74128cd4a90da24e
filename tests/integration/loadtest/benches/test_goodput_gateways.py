"""``loadtest goodput --gateways 1,2``: one and then two gateway replicas in front of the same
fast simulated pod, in one run; the report has a sweep for each, and with two replicas both
served requests (by their own metrics). Nothing about speed: the rates are tiny."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from gateway.batching.policy import ALL_SEND_REASONS
from loadtest.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)


def test_goodput_measures_one_and_two_replicas_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "goodput.json"
    argv = ["goodput", "--pods", "1", "--gateways", "1,2", "--modes", "batching"]
    argv += ["--fractions", "0.1", "--refine", "0", "--duration", "0.5", "--warmup", "0.3"]
    argv += ["--fixed-ms", "5", "--per-row-ms", "0", "--max-batch", "4", "--json", str(report)]
    main(argv)  # its exit code says whether steps met the SLO: timing, not asserted
    doc = json.loads(report.read_text())
    assert [(s["pods"], s["gateways"], s["mode"]) for s in doc["sweeps"]] == [
        (1, 1, "batching"),
        (1, 2, "batching"),
    ]
    one, two = doc["sweeps"]
    assert doc["config"]["gateways"] == [1, 2]
    for step in one["steps"]:
        assert [g["name"] for g in step["per_gateway"]] == ["gateway"]
        assert set(step["cpu_s"]) == {"gateway", "pod0"}
    for step in two["steps"]:
        assert [g["name"] for g in step["per_gateway"]] == ["gateway", "gateway1"]
        assert all(g["requests"] > 0 for g in step["per_gateway"])  # the load spread over both
        owner, other = step["per_gateway"]  # one pod: the first owns it, the other sends on
        assert owner["batches"] > 0 and not other["batches"]
        assert step["mean_batch_rows"] is not None  # over the replicas' batches
        assert set(step["cpu_s"]) == {"gateway", "gateway1", "pod0"}
        assert step["load"]["ok"] > 0
    for step in one["steps"] + two["steps"]:  # every batch counted under its reason to send
        assert set(step["sends"]) <= set(ALL_SEND_REASONS)
        assert sum(step["sends"].values()) == sum(g["batches"] for g in step["per_gateway"]) > 0
    out = capsys.readouterr().out
    assert "gateways" in out and "1 pod(s) 2 gw batching" in out


def test_goodput_sends_the_gateways_batches_to_the_pods_rest_api_when_asked(
    tmp_path: Path,
) -> None:
    """With ``--backend-protocol http`` the gateway is pointed at the pod's HTTP port and speaks
    REST to it: a wrong pairing (gRPC to the HTTP port, or REST to the gRPC one) answers
    nothing, so every request served without an error shows the two agree."""
    report = tmp_path / "goodput.json"
    argv = ["goodput", "--pods", "1", "--modes", "batching", "--backend-protocol", "http"]
    argv += ["--fractions", "0.1", "--refine", "0", "--duration", "0.5", "--warmup", "0.3"]
    argv += ["--fixed-ms", "5", "--per-row-ms", "0", "--max-batch", "4", "--json", str(report)]
    main(argv)
    doc = json.loads(report.read_text())
    assert doc["config"]["backend_protocol"] == "http"
    steps = doc["sweeps"][0]["steps"]  # more than one where a step was rerun (a slow moment)
    assert sum(step["errors"] for step in steps) == 0
    assert all(step["load"]["ok"] > 0 and step["per_gateway"][0]["batches"] > 0 for step in steps)
