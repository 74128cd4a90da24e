"""``loadtest bench`` end to end, very briefly: figures for each protocol, a JSON report.

It asserts that the runs succeed and the report is complete, never how fast anything is.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from loadtest.benches.datapath import BenchConfig, run_bench

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None
    or importlib.util.find_spec("gateway.main") is None,
    reason="simpod or gateway not built yet",
)


def test_bench_measures_both_paths_of_every_protocol(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    config = BenchConfig(
        concurrency=2,
        duration_s=0.3,
        warmup_s=0.1,
        processes=0,
        json_path=report,
        pod_fixed_ms=0.1,
    )
    figures = run_bench(config)
    assert [f.protocol for f in figures] == ["http-json", "http-binary", "grpc"]
    for fig in figures:
        for leg in (fig.direct, fig.gateway):
            assert leg.result.error_count == 0, leg.result.error_sample
            assert leg.result.ok > 0
            assert leg.result.verified > 0
        assert set(fig.gateway.cpu_s) == {"gateway", "pod"}
    doc = json.loads(report.read_text())
    assert [r["protocol"] for r in doc["results"]] == ["http-json", "http-binary", "grpc"]
    for row in doc["results"]:
        assert row["gateway_cpu_us_per_req"] is not None
        assert row["direct"]["latency"]["count"] == row["direct"]["ok"]
