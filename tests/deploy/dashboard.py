"""The Grafana dashboard of deploy/components/monitoring and the metric names it queries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/components/monitoring/dashboard.json"
_NAME = re.compile(r"\b(?:gateway|autoscaler)_[a-z_]+")
_SUFFIX = re.compile(r"_(total|bucket|sum|count|created)$")

__all__ = ["DASHBOARD", "exported", "family", "load", "queried_metrics"]


def queried_metrics(dash: dict[str, Any]) -> set[str]:
    """Every gateway_* and autoscaler_* name in the panels' queries and the variables."""
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v.get("definition", "") for v in dash["templating"]["list"]]
    return {m for e in exprs for m in _NAME.findall(e)}


def family(sample_name: str) -> str:
    """The metric family a sample name belongs to (``x_total`` and ``x_bucket`` are ``x``)."""
    return _SUFFIX.sub("", sample_name)


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def exported(page: str) -> tuple[set[str], set[str]]:
    """The families a metrics page declares, and the sample names it holds values for."""
    families: set[str] = set()
    samples: set[str] = set()
    for fam in text_string_to_metric_families(page):
        families.add(fam.name)
        samples |= {s.name for s in fam.samples}
    return families, samples
