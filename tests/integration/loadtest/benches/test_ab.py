"""``loadtest ab`` end to end: two simulated pods whose service times differ fourfold.

Closed loop at concurrency 1, so each side's latency is its pod's fixed time plus the same
overhead; the p50 ratio must land near (8 + o) / (2 + o) for a small overhead o. The tolerance
is wide on purpose: the machine is shared. Nothing about speed is asserted.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None, reason="simpod not built yet"
)


def test_ab_of_two_pods_measures_the_ratio_of_their_service_times(tmp_path: Path) -> None:
    report = tmp_path / "ab.json"
    argv = ["ab", "--a", "pod:F=2", "--b", "pod:F=8", "--protocol", "grpc", "--concurrency", "1"]
    argv += ["--rounds", "2", "--duration", "0.6", "--warmup", "0.2", "--processes", "0"]
    assert main([*argv, "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    a, b = doc["a"], doc["b"]
    assert (a["label"], b["label"]) == ("pod:F=2", "pod:F=8")
    assert a["rounds"] == b["rounds"] == 2
    assert a["errors"] == b["errors"] == {}
    assert a["latency"]["p50_us"] >= 2000 and b["latency"]["p50_us"] >= 8000
    p50_ratio = doc["ratios_b_over_a"]["p50_us"]
    assert 1.8 <= p50_ratio <= 4.5, p50_ratio  # 4 with no overhead; ~3 with 1 ms of it
    assert doc["ratios_b_over_a"]["throughput_rps"] < 0.7
    assert set(a["cpu_s"]) == {"pod"}  # self-started: its process is watched


def two_gateways(tmp_path: Path, a: str, b: str, protocol: str) -> dict[str, Any]:
    """A brief ``loadtest ab`` of two gateway sides in front of one 2 ms pod: its report, each
    side served without error."""
    report = tmp_path / "ab.json"
    argv = ["ab", "--a", a, "--b", b, "--protocol", protocol]
    argv += ["--concurrency", "1", "--rounds", "1", "--duration", "0.5", "--warmup", "0.2"]
    argv += ["--processes", "0", "--fixed-ms", "2"]
    assert main([*argv, "--json", str(report)]) == 0
    doc: dict[str, Any] = json.loads(report.read_text())
    assert doc["a"]["errors"] == doc["b"]["errors"] == {}
    assert doc["a"]["ok"] > 0 and doc["b"]["ok"] > 0
    return doc


def test_ab_of_one_gateway_and_two_replicas_spreads_b_over_both(tmp_path: Path) -> None:
    doc = two_gateways(tmp_path, "gateway", "gateway:gateways=2", "grpc")
    a, b = doc["a"], doc["b"]
    assert "targets" not in a and len(set(b["targets"])) == 2
    assert set(a["cpu_s"]) == {"gateway", "pod"}
    assert set(b["cpu_s"]) == {"gateway", "gateway1", "pod"}  # the same pod behind both
    assert doc["config"]["processes"] == 2  # one generator process per replica, both sides


def test_ab_of_the_two_backends_serves_both_from_the_same_pod(tmp_path: Path) -> None:
    doc = two_gateways(tmp_path, "gateway", "gateway:backend=http", "http-binary")
    # two gateways (one per backend, not one shared) in front of one pod, which both watch
    assert doc["a"]["target"] != doc["b"]["target"]
    assert set(doc["a"]["cpu_s"]) == set(doc["b"]["cpu_s"]) == {"gateway", "pod"}
