"""The discovery benchmark runs end to end and reports figures (no timing is asserted)."""

from __future__ import annotations

import pytest

from loadtest.benches.discovery import DiscoveryBenchConfig, run_discovery_bench


def test_the_discovery_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    figures = run_discovery_bench(
        DiscoveryBenchConfig(endpoints=300, slice_size=50, churn_per_s=50.0, duration_s=0.5)
    )
    assert figures.endpoints == 300 and figures.changes > 0
    assert 0 < len(figures.latency_ms) <= figures.changes  # changes reached the routing view
    out = capsys.readouterr().out
    assert "discovery CPU" in out and "event to routing view" in out
