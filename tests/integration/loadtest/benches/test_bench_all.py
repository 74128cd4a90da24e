"""``loadtest bench-all --quick`` (what ``make bench`` runs, cut to seconds) writes one report
with every section. The figures of a quick run mean nothing and are not checked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from loadtest.benches.bench_all import SECTIONS
from loadtest.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("loadtest.simpod.main") is None
    or importlib.util.find_spec("gateway.main") is None,
    reason="simpod or gateway not built yet",
)


def test_bench_all_quick_writes_one_report_with_every_section(tmp_path: Path) -> None:
    assert main(["bench-all", "--quick", "--out-dir", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["quick"] is True
    assert list(doc["sections"]) == list(SECTIONS)
    for name, section in doc["sections"].items():
        assert "error" not in section, (name, section)
    assert [r["protocol"] for r in doc["sections"]["datapath"]["results"]] == [
        "http-json",
        "http-binary",
        "grpc",
    ]
    assert len(doc["sections"]["ceiling"]["results"]) == 3
    text = (tmp_path / "bench.md").read_text()
    assert text.count("\n## ") == len(SECTIONS)
