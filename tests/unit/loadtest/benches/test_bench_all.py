"""The combined benchmark report, fed with small results of every bench (no servers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.benches import bench_all
from loadtest.benches.ab import AbResult, Leg, Side
from loadtest.benches.autoscale import BenchConfig as AutoscaleConfig
from loadtest.benches.autoscale import autoscale_doc
from loadtest.benches.autoscale import run_bench as run_autoscale
from loadtest.benches.bench_all import (
    SECTIONS,
    BenchAllConfig,
    combine,
    machine_info,
    run_bench_all,
)
from loadtest.benches.bench_all_md import markdown, md_table
from loadtest.benches.ceiling import CeilingConfig, CeilingStep, ceiling_doc, ceiling_of
from loadtest.benches.datapath import BenchConfig, ProtocolFigures, datapath_doc
from loadtest.benches.discovery import DiscoveryBenchConfig, DiscoveryFigures, discovery_doc
from loadtest.benches.goodput import GoodputConfig, Sweep, goodput_doc
from loadtest.benches.goodput_sweep import Step
from loadtest.clients.base import ClientSpec
from loadtest.results.histogram import encode, new_histogram
from loadtest.results.load_result import LoadResult


def _result(latency_us: int, n: int) -> LoadResult:
    hist = new_histogram()
    hist.record_value(latency_us, n)
    return LoadResult(histogram=encode(hist), ok=n, window_s=1.0)


def _datapath() -> dict[str, Any]:
    direct, gateway = Leg(), Leg()
    direct.add(_result(500, 4000), {"pod": 0.4})
    gateway.add(_result(900, 3000), {"pod": 0.3, "gateway": 0.6})
    sides = (Side("direct", ClientSpec("grpc", "a:1")), Side("gateway", ClientSpec("grpc", "b:1")))
    figures = [ProtocolFigures("grpc", AbResult(*sides, (direct, gateway)))]
    return datapath_doc(BenchConfig(protocols=("grpc",)), figures, 0.0)


def _goodput() -> dict[str, Any]:
    step = Step(0.5, 1000.0, 990.0, 1000, 990, 0, 8000, 41000, True, mean_batch_rows=6.5)
    sweep = Sweep(1, "batching", 2000.0, steps=[step], details=[step.as_dict()], goodput=step)
    return goodput_doc(GoodputConfig(pods=(1,)), [sweep, Sweep(1, "none", 2000.0)], 0.0)


def _discovery() -> dict[str, Any]:
    figures = DiscoveryFigures(
        endpoints=2000, changes=1000, seconds=10.0, cpu_s=0.5, list_s=0.2, latency_ms=[1.0, 3.0]
    )
    return discovery_doc(DiscoveryBenchConfig(), figures)


def _autoscale() -> dict[str, Any]:
    config = AutoscaleConfig(duration_s=30.0)
    return autoscale_doc(config, run_autoscale(config, show=False))


def _receiver() -> dict[str, Any]:
    return {
        "config": {"gateways": 100, "models": 200},
        "offered_reports_per_s": 80000.0,
        "in_process": {"reports_per_core_s": 120000, "us_per_report": 8.3},
        "grpc": {"reports_per_core_s": 40000, "us_per_report": 25.0},
        "tick": {"models": 200, "tick_ms_median": 12.5},
    }


def _ceiling() -> dict[str, Any]:
    step = CeilingStep(
        rate=2000.0, due=2000, ok=2000, errors=0, generator_cpu_us_per_req=125.0, lag_p99_us=300
    )
    return ceiling_doc(CeilingConfig(), [ceiling_of("grpc", [step], 0.01)], 0.0)


DOCS = {
    "datapath": _datapath,
    "goodput": _goodput,
    "discovery": _discovery,
    "autoscale": _autoscale,
    "receiver": _receiver,
    "ceiling": _ceiling,
}


def test_the_report_holds_every_section_under_its_name() -> None:
    sections = {name: make() for name, make in DOCS.items()}
    doc = combine(sections, machine=machine_info(), started=0.0, finished=60.0, quick=False)
    assert list(doc["sections"]) == list(SECTIONS)
    assert doc["machine"]["cpus"] >= 1
    assert (doc["started_unix"], doc["finished_unix"]) == (0.0, 60.0)
    json.dumps(doc)  # plain JSON values only


def test_the_markdown_shows_each_sections_headline_figures() -> None:
    sections = {name: make() for name, make in DOCS.items()}
    text = markdown(combine(sections, machine={"cpus": 2}, started=0, finished=1, quick=False))
    for title in (
        "Data path",
        "Goodput",
        "Discovery",
        "Autoscaling",
        "The autoscaler's",
        "The load generator's",
    ):
        assert f"\n## {title}" in text
    assert "| grpc | 4,000 | 3,000 | 0.75 |" in text  # data path: req/s and the ratio
    assert "| 1 pod(s), batching | 2,000 | 990 | 50% | 41.00 ms | 6.5 |" in text
    assert "| 1 pod(s), none | 2,000 | - |" in text  # no goodput found
    assert "| 2,000 | 100 | 5.00% |" in text  # discovery: endpoints, changes/s, CPU
    assert "this decider (capacity)" in text
    assert "| in-process (decode + record) | 120,000 | 8.30 |" in text  # the receiver
    assert "| grpc | 2,000 | 125 | 8,000 | none | top rate |" in text  # the ceiling


def test_a_failed_section_is_reported_not_lost() -> None:
    text = markdown(
        combine(
            {"goodput": {"error": "RuntimeError: boom"}},
            machine={},
            started=0,
            finished=1,
            quick=True,
        )
    )
    assert "**Failed:** `RuntimeError: boom`" in text
    assert "quick run" in text


def test_md_table_aligns_figures_right() -> None:
    assert md_table(["a", "b"], [["x", "1"]]) == "| a | b |\n| :-- | --: |\n| x | 1 |"


def test_run_bench_all_writes_json_and_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(config: BenchAllConfig) -> dict[str, Any]:
        raise RuntimeError("pod would not start")

    runners = {name: (lambda c, make=make: make()) for name, make in DOCS.items()}
    monkeypatch.setattr(bench_all, "RUNNERS", {**runners, "discovery": fail})
    doc = run_bench_all(BenchAllConfig(out_dir=tmp_path))
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == json.loads(json.dumps(doc))
    assert saved["sections"]["discovery"] == {"error": "RuntimeError: pod would not start"}
    assert saved["sections"]["ceiling"]["results"][0]["protocol"] == "grpc"
    assert set(saved["section_seconds"]) == set(SECTIONS)
    assert "## Discovery under endpoint churn" in (tmp_path / "bench.md").read_text()


def test_unknown_sections_are_refused() -> None:
    with pytest.raises(ValueError):
        BenchAllConfig(sections=("datapath", "vibes"))
