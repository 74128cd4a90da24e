"""Read the stack's Prometheus metrics and turn two scrapes a second apart into figures.

``parse_metrics`` keeps every sample of a text exposition by name and labels; ``figures`` reads
a scrape of the gateway (``gateway/metrics.py``, ``gateway/reporter.py``) or of a simulated pod
(``loadtest/simpod/metrics.py``, Triton's names), whichever it is, and gives what the trace
report plots: gauges as they are now (queue depth, in-flight, replicas), counters as the change
since the previous scrape (batches and their rows, requests/s). Parsing and figures are pure;
only ``fetch_metrics`` does I/O.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape", "fetch_metrics", "figures", "gateway_figures", "parse_metrics", "pod_figures"]

Labels = tuple[tuple[str, str], ...]
SourceKind = Literal["gateway", "pod", "other"]


@dataclass(frozen=True, slots=True)
class Scrape:
    """Every sample of one scrape: value by (sample name, sorted label pairs)."""

    samples: dict[tuple[str, Labels], float]

    @property
    def kind(self) -> SourceKind:
        """Whose metrics these are: the gateway's, a simulated (Triton-style) pod's, or other."""
        names = {name for name, _ in self.samples}
        if "gateway_requests_total" in names or "gateway_inflight_requests" in names:
            return "gateway"
        if any(name.startswith("nv_inference_") for name in names):
            return "pod"
        return "other"

    def _matching(self, name: str, match: dict[str, str]) -> list[tuple[Labels, float]]:
        return [
            (labels, value)
            for (n, labels), value in self.samples.items()
            if n == name and all(dict(labels).get(k) == v for k, v in match.items())
        ]

    def total(self, name: str, **match: str) -> float | None:
        """The sum of the samples ``name`` whose labels include ``match``; None if none."""
        found = self._matching(name, match)
        return sum(value for _, value in found) if found else None

    def by_label(self, name: str, label: str, **match: str) -> dict[str, float]:
        """The samples ``name`` (labels including ``match``) summed by the value of ``label``."""
        out: dict[str, float] = {}
        for labels, value in self._matching(name, match):
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
        return out


def parse_metrics(text: str) -> Scrape:
    """A ``Scrape`` of a Prometheus text exposition."""
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(samples)


def fetch_metrics(url: str, timeout_s: float = 1.0) -> Scrape | None:
    """Scrape ``url``; None when it cannot be read or parsed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return parse_metrics(resp.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def _delta(prev: Scrape | None, cur: Scrape, name: str, **match: str) -> float | None:
    """How much counter ``name`` grew since ``prev``; None without both, or if it went back."""
    before = None if prev is None else prev.total(name, **match)
    now = cur.total(name, **match)
    if before is None or now is None or now < before:
        return None
    return now - before


def _per_s(value: float | None, dt: float) -> float | None:
    return None if value is None or dt <= 0 else value / dt


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else num / den


def _batches(prev: Scrape | None, cur: Scrape, histogram: str, model: str) -> dict[str, Any]:
    """Batches and their rows since ``prev``, from a rows-per-batch histogram's count and sum."""
    rows = _delta(prev, cur, f"{histogram}_sum", model=model)
    batches = _delta(prev, cur, f"{histogram}_count", model=model)
    return {"batch_rows": rows, "batches": batches, "mean_batch_rows": _ratio(rows, batches)}


def gateway_figures(prev: Scrape | None, cur: Scrape, dt: float, model: str) -> dict[str, Any]:
    """The gateway's figures for ``model``: now, and over the ``dt`` s since ``prev``."""
    return {
        "queue_requests": cur.total("gateway_queue_requests", model=model),
        "queue_rows": cur.total("gateway_queue_rows", model=model),
        "queue_by_priority": cur.by_label("gateway_queue_requests", "priority", model=model),
        "inflight_requests": cur.total("gateway_inflight_requests", model=model),
        "pod_inflight_batches": cur.by_label(
            "gateway_pod_inflight_batches", "model_server_pod", model=model
        ),
        **_batches(prev, cur, "gateway_batch_rows", model),
        "requests_per_s": _per_s(_delta(prev, cur, "gateway_requests_total", model=model), dt),
        "failures_per_s": _per_s(
            _delta(prev, cur, "gateway_request_failures_total", model=model), dt
        ),
        "rejections_per_s": _per_s(_delta(prev, cur, "gateway_rejections_total", model=model), dt),
        "replicas": cur.total("gateway_load_ready_endpoints", model=model),
        "demand_rows": cur.total("gateway_load_demand_rows", model=model),
    }


def pod_figures(prev: Scrape | None, cur: Scrape, dt: float, model: str) -> dict[str, Any]:
    """A simulated pod's figures for ``model``: now, and over the ``dt`` s since ``prev``."""
    return {
        "pending_requests": cur.total("nv_inference_pending_request_count", model=model),
        "running_batches": cur.total("simpod_running_batches", model=model),
        **_batches(prev, cur, "simpod_batch_size", model),
        "success_per_s": _per_s(_delta(prev, cur, "nv_inference_request_success", model=model), dt),
        "device_busy": _per_s(_delta(prev, cur, "simpod_device_busy_seconds_total"), dt),
    }


def figures(prev: Scrape | None, cur: Scrape, dt: float, model: str) -> dict[str, Any]:
    """``gateway_figures`` or ``pod_figures``, whichever ``cur`` is; {} for other metrics."""
    kind = cur.kind
    if kind == "gateway":
        return gateway_figures(prev, cur, dt, model)
    if kind == "pod":
        return pod_figures(prev, cur, dt, model)
    return {}
