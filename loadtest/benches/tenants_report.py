"""The tenants benchmark's figures, pure: each tenant's from its generator's result, the pods'
from two scrapes of their and the gateway's metrics, and the side-by-side tables.

A tenant's figures are over the requests due in the measurement window: offered and served
rows/s, goodput (rows/s answered within the SLO), p50/p99 of the answered requests, the 429s
(``http 429``, ``grpc RESOURCE_EXHAUSTED``) and every other error, per second. The pods' are
their busy fraction (simulated device seconds over the window), the rows they ran against their
capacity, and from the gateway the mean batch and each tenant's refusals by reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from loadtest.probes.metrics import Scrape
from loadtest.probes.stack import BatchCounts
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.results.per_second import within
from loadtest.results.report import fmt_rate, fmt_us

__all__ = [
    "MODE_LABELS",
    "REJECTED",
    "ModeRun",
    "PodFigures",
    "TenantFigures",
    "pod_figures",
    "pods_rows",
    "tenant_rows",
]

MODE_LABELS = {"fair": "fair share", "fifo": "FIFO"}
REJECTED = frozenset({"http 429", "grpc RESOURCE_EXHAUSTED"})  # the clients' labels for a 429
_BUSY = "simpod_device_busy_seconds_total"
_POD_ROWS = "nv_inference_count"
_REFUSALS = "gateway_tenant_rejections_total"
Scraped = tuple[Scrape | None, Scrape | None]  # a source's metrics when the window opened, closed


@dataclass(frozen=True, slots=True)
class TenantFigures:
    """One tenant's figures over the window; rates in rows/s (429s and errors: requests/s)."""

    tenant: str
    offered_rows_s: float
    served_rows_s: float
    goodput_rows_s: float
    p50_us: int | None
    p99_us: int | None
    rejected_per_s: float
    other_errors_per_s: float
    errors: dict[str, int] = field(default_factory=dict)
    invalid_reason: str = ""

    @classmethod
    def of(cls, tenant: str, result: OpenLoopResult, rows: int, slo_ms: float) -> TenantFigures:
        """The figures of ``result`` (``rows`` per request; goodput within ``slo_ms``)."""
        window = result.window_s or 1.0
        summary = result.summary()
        rejected = sum(n for kind, n in result.errors.items() if kind in REJECTED)
        good = within(result.histogram, slo_ms * 1000) if result.ok else 0
        return cls(
            tenant=tenant,
            offered_rows_s=result.due * rows / window,
            served_rows_s=result.ok * rows / window,
            goodput_rows_s=good * rows / window,
            p50_us=summary.p50_us if summary.count else None,
            p99_us=summary.p99_us if summary.count else None,
            rejected_per_s=rejected / window,
            other_errors_per_s=(result.error_count - rejected) / window,
            errors=dict(sorted(result.errors.items())),
            invalid_reason=result.invalid,
        )

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for key, value in doc.items():
            if isinstance(value, float):
                doc[key] = round(value, 2)
        return doc


@dataclass(frozen=True, slots=True)
class PodFigures:
    """The pods over the window (None: a scrape was missing) and the gateway's refusals
    (tenant -> reason -> requests/s)."""

    busy_fraction: float | None
    served_rows_s: float | None
    of_capacity: float | None
    mean_batch_rows: float | None
    refusals: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _grown(before: Scrape, after: Scrape, name: str, **match: str) -> float | None:
    now, then = after.total(name, **match), before.total(name, **match)
    return None if now is None else now - (then or 0.0)


def _summed(pairs: Sequence[Scraped], name: str, **match: str) -> float | None:
    """How much ``name`` grew, summed over every (before, after); None if any is missing."""
    total = 0.0
    for before, after in pairs:
        grown = None if before is None or after is None else _grown(before, after, name, **match)
        if grown is None:
            return None
        total += grown
    return total if pairs else None


def pod_figures(
    pods: Sequence[Scraped],
    gateway: Scraped,
    window_s: float,
    capacity_rows_s: float,
    *,
    devices: int = 1,
    model: str = "sim",
    tenants: Sequence[str] = (),
) -> PodFigures:
    """The pods' figures from each pod's scrapes and the gateway's (before, after) the window;
    the refusals per second."""
    busy = _summed(pods, _BUSY)
    rows = _summed(pods, _POD_ROWS, model=model)
    served = None if rows is None else rows / window_s
    mean_batch: float | None = None
    refusals: dict[str, dict[str, float]] = {}
    before, after = gateway
    if before is not None and after is not None:
        mean_batch = (BatchCounts.of(after, model) - BatchCounts.of(before, model)).mean
        for tenant in tenants:
            then = before.by_label(_REFUSALS, "reason", tenant=tenant)
            now = after.by_label(_REFUSALS, "reason", tenant=tenant)
            grown = {r: (n - then.get(r, 0.0)) / window_s for r, n in sorted(now.items())}
            refusals[tenant] = {r: n for r, n in grown.items() if n > 0}
    return PodFigures(
        busy_fraction=None if busy is None else busy / (window_s * len(pods) * devices),
        served_rows_s=served,
        of_capacity=None if served is None else served / capacity_rows_s,
        mean_batch_rows=mean_batch,
        refusals=refusals,
    )


@dataclass(slots=True)
class ModeRun:
    """One gateway mode (``fair`` or ``fifo``): each tenant's figures and result, the pods'."""

    mode: str
    tenants: dict[str, TenantFigures]
    pods: PodFigures
    results: dict[str, OpenLoopResult] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return MODE_LABELS.get(self.mode, self.mode)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "fair_share": self.mode == "fair",
            "tenants": {t: f.as_dict() for t, f in self.tenants.items()},
            "pods": self.pods.as_dict(),
            "load": {t: r.as_dict() for t, r in self.results.items()},
        }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _per_s(value: float) -> str:
    return f"{value:,.1f}" if 0 < value < 10 else fmt_rate(value)


def tenant_columns(runs: Sequence[ModeRun]) -> list[str]:
    """``figure``, then a column per mode and tenant: ``fair share: A`` …"""
    return ["figure"] + [f"{run.label}: {t}" for run in runs for t in run.tenants]


def tenant_rows(runs: Sequence[ModeRun], slo_ms: float) -> list[list[str]]:
    """The tenants' figures, a row each, the modes' tenants side by side."""
    cells = [f for run in runs for f in run.tenants.values()]
    table: list[tuple[str, Any]] = [
        ("offered rows/s", lambda f: fmt_rate(f.offered_rows_s)),
        ("served rows/s", lambda f: fmt_rate(f.served_rows_s)),
        (f"goodput rows/s (≤ {slo_ms:g} ms)", lambda f: fmt_rate(f.goodput_rows_s)),
        ("p50 (answered)", lambda f: fmt_us(f.p50_us)),
        ("p99 (answered)", lambda f: fmt_us(f.p99_us)),
        ("429s/s", lambda f: _per_s(f.rejected_per_s)),
        ("other errors/s", lambda f: _per_s(f.other_errors_per_s)),
    ]
    return [[name, *(cell(f) for f in cells)] for name, cell in table]


def _refused(refusals: Mapping[str, float]) -> str:
    return ", ".join(f"{reason} {_per_s(n)}" for reason, n in refusals.items()) or "0"


def pods_rows(runs: Sequence[ModeRun], tenants: Sequence[str]) -> list[list[str]]:
    """The pods' figures (and the gateway's refusals per tenant), a column per mode."""
    rows = [
        ["pods busy (device time)", *(_pct(r.pods.busy_fraction) for r in runs)],
        ["rows/s the pods ran", *(fmt_rate(r.pods.served_rows_s) for r in runs)],
        ["  of capacity", *(_pct(r.pods.of_capacity) for r in runs)],
        [
            "mean batch rows (gateway)",
            *(
                "-" if r.pods.mean_batch_rows is None else f"{r.pods.mean_batch_rows:.1f}"
                for r in runs
            ),
        ],
    ]
    for tenant in tenants:
        refused = [_refused(r.pods.refusals.get(tenant, {})) for r in runs]
        rows.append([f"{tenant} refused by the gateway /s", *refused])
    return rows
