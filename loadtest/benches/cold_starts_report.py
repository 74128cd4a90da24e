"""The cold-starts bench's figures and report: each replica's window from two scrapes of its
metrics, a run's record, the collapse rule, the printed table and the JSON document. Pure: the
bench (``cold_starts``) does the I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loadtest.benches.gateways_probe import window_figures
from loadtest.benches.goodput_sweep import GatewayFigures
from loadtest.benches.loop_figures import TOO_MANY
from loadtest.probes.metrics import Scrape
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.results.report import fmt_rate, fmt_us, print_table, report_doc

if TYPE_CHECKING:
    from loadtest.benches.cold_starts import ColdStartsConfig

__all__ = [
    "COLLAPSE_P50_RATIO",
    "MODEL",
    "REJECTED",
    "ColdStartsReport",
    "ReplicaFigures",
    "RunRecord",
    "cold_starts_doc",
    "collapse_reason",
    "print_report",
    "replica_figures",
    "run_line",
    "table_rows",
]

MODEL = "sim"
COLLAPSE_P50_RATIO = 3.0
REJECTED = frozenset({TOO_MANY, "grpc RESOURCE_EXHAUSTED"})  # the generator's kinds for a 429


@dataclass(frozen=True, slots=True)
class ReplicaFigures:
    """One replica over a run's window: what it received, sent and fitted (``window``), the
    requests it answered without error and its failures by status (its metrics' ``code``)."""

    window: GatewayFigures
    answered: float
    failures: dict[str, float] = field(default_factory=dict)

    def served_rows_s(self, window_s: float) -> float | None:
        """Rows/s answered without error (1-row requests) over a window of ``window_s``."""
        return self.answered / window_s if window_s > 0 else None

    def as_dict(self, window_s: float) -> dict[str, Any]:
        served = self.served_rows_s(window_s)
        fitted = (self.window.fitted_fixed_ms, self.window.fitted_per_row_ms)
        f, c = (None if v is None else round(v, 4) for v in fitted)
        return {
            **asdict(self.window),
            "fitted_fixed_ms": f,
            "fitted_per_row_ms": c,
            "answered": self.answered,
            "served_rows_s": None if served is None else round(served, 1),
            "failures": self.failures,
        }


def _grown(before: Scrape, after: Scrape, sample: str) -> float:
    return (after.total(sample, model=MODEL) or 0.0) - (before.total(sample, model=MODEL) or 0.0)


def replica_figures(name: str, before: Scrape, after: Scrape) -> ReplicaFigures:
    """Replica ``name``'s figures between two scrapes of its metrics: answered = answers
    (``gateway_request_duration_seconds_count``) less failures."""
    failures_name = "gateway_request_failures_total"
    then = before.by_label(failures_name, "code", model=MODEL)
    now = after.by_label(failures_name, "code", model=MODEL)
    failures = {code: n - then.get(code, 0.0) for code, n in sorted(now.items())}
    failures = {code: n for code, n in failures.items() if n > 0}
    answers = _grown(before, after, "gateway_request_duration_seconds_count")
    return ReplicaFigures(
        window_figures(name, before, after, MODEL),
        max(0.0, answers - sum(failures.values())),
        failures,
    )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run on its own stack: the load's result, each replica's figures (in replica order;
    () where a scrape failed), the processes' CPU seconds over the window and their pids, and
    what exited during the run ("" if nothing)."""

    label: str
    gateways: int
    result: OpenLoopResult
    replicas: tuple[ReplicaFigures, ...]
    cpu_s: dict[str, float]
    pids: dict[str, int]
    gone: str = ""

    @property
    def rejected(self) -> int:
        return sum(n for kind, n in self.result.errors.items() if kind in REJECTED)

    @property
    def other_errors(self) -> dict[str, int]:
        return {k: n for k, n in sorted(self.result.errors.items()) if k not in REJECTED}

    def as_dict(self, baseline_p50_us: int | None = None) -> dict[str, Any]:
        s, window = self.result.summary(), self.result.window_s
        doc: dict[str, Any] = {
            "label": self.label,
            "gateways": self.gateways,
            "p50_us": s.p50_us,
            "p99_us": s.p99_us,
            "ok": self.result.ok,
            "due": self.result.due,
            "rejected_429": self.rejected,
            "other_errors": self.other_errors,
            "served_rows_s": round(self.result.throughput, 1),
            "valid": self.result.valid,
            "invalid_reason": self.result.invalid,
            "per_gateway": [r.as_dict(window) for r in self.replicas],
            "cpu_s": {k: round(v, 4) for k, v in self.cpu_s.items()},
            "pids": self.pids,
            "gone": self.gone,
            "load": self.result.as_dict(),
        }
        if baseline_p50_us is not None:
            reason = collapse_reason(self, baseline_p50_us)
            doc.update(collapsed=bool(reason), collapse_reason=reason)
        return doc


def collapse_reason(run: RunRecord, baseline_p50_us: int) -> str:
    """Why ``run`` collapsed, or "" if it did not: any 429, a p50 over ``COLLAPSE_P50_RATIO`` x
    the baseline's, nothing served, or a process of its stack gone."""
    reasons = []
    if run.gone:
        reasons.append(run.gone)
    if run.rejected:
        reasons.append(f"{run.rejected} x 429")
    if not run.result.ok:
        reasons.append("nothing served")
    else:
        p50 = run.result.summary().p50_us
        if p50 > COLLAPSE_P50_RATIO * baseline_p50_us:
            reasons.append(
                f"p50 {fmt_us(p50)} > {COLLAPSE_P50_RATIO:g}x baseline {fmt_us(baseline_p50_us)}"
            )
    return "; ".join(reasons)


@dataclass(frozen=True, slots=True)
class ColdStartsReport:
    baseline: RunRecord
    runs: tuple[RunRecord, ...]

    @property
    def baseline_p50_us(self) -> int:
        return self.baseline.result.summary().p50_us

    def collapsed(self) -> list[RunRecord]:
        return [r for r in self.runs if collapse_reason(r, self.baseline_p50_us)]


def _kinds(errors: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in errors.items()) or "0"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cost(r: ReplicaFigures) -> str:
    return f"{_num(r.window.fitted_fixed_ms, 1)}/{_num(r.window.fitted_per_row_ms, 3)}"


def _each(items: Iterable[str]) -> str:
    return " / ".join(items) or "-"


def run_line(run: RunRecord, baseline_p50_us: int | None) -> str:
    """One line per run, printed as it ends (with its verdict once there is a baseline)."""
    s, window = run.result.summary(), run.result.window_s
    served = _each(fmt_rate(r.served_rows_s(window)) for r in run.replicas)
    fitted = _each(_cost(r) for r in run.replicas)
    verdict = "" if baseline_p50_us is None else collapse_reason(run, baseline_p50_us) or "ok"
    return (
        f"{run.label:<10} {run.gateways} gw  p50 {fmt_us(s.p50_us):>8} p99 {fmt_us(s.p99_us):>8}"
        f"  429s {run.rejected}  other {_kinds(run.other_errors)}  served {served} rows/s"
        f"  fitted F/c {fitted} ms  {verdict}"
    )


COLUMNS = [
    "run",
    "gateways",
    "p50",
    "p99",
    "429s",
    "other errors",
    "served rows/s\n(each gateway)",
    "fitted F ms\n(each gateway)",
    "fitted c ms\n(each gateway)",
    "valid",
    "collapsed",
]


def table_rows(report: ColdStartsReport) -> list[list[str]]:
    """The table's rows: the baseline, then every start."""
    rows = []
    for run in (report.baseline, *report.runs):
        s, window = run.result.summary(), run.result.window_s
        reason = "-" if run is report.baseline else collapse_reason(run, report.baseline_p50_us)
        rows.append(
            [
                run.label,
                str(run.gateways),
                fmt_us(s.p50_us),
                fmt_us(s.p99_us),
                str(run.rejected),
                _kinds(run.other_errors),
                _each(fmt_rate(r.served_rows_s(window)) for r in run.replicas),
                _each(_num(r.window.fitted_fixed_ms, 1) for r in run.replicas),
                _each(_num(r.window.fitted_per_row_ms, 3) for r in run.replicas),
                "yes" if run.result.valid else "NO",
                reason or "no",
            ]
        )
    return rows


def print_report(report: ColdStartsReport, config: ColdStartsConfig) -> None:
    collapsed = len(report.collapsed())
    notes = [
        f"{collapsed} of {len(report.runs)} starts collapsed (any 429, or p50 over "
        f"{COLLAPSE_P50_RATIO:g}x the baseline's {fmt_us(report.baseline_p50_us)}).",
        f"Each run: fresh pod(s) and gateway(s), {config.rate:,.0f} req/s of 1-row "
        f"{config.protocol} ({config.fraction:g} of {config.limit_rows_s:,.0f} rows/s) for "
        f"{config.duration_s:g} s from the moment they serve, no warm-up.",
    ]
    title = (
        f"Cold starts: {config.pods} pod(s), F {config.fixed_ms:g} ms + c {config.per_row_ms:g} "
        f"ms/row, max batch {config.max_batch}"
    )
    print_table(title, COLUMNS, table_rows(report), notes)


def cold_starts_doc(
    config: ColdStartsConfig, report: ColdStartsReport, started: float
) -> dict[str, Any]:
    """The JSON report of a run started at ``started`` (Unix seconds)."""
    p50 = report.baseline_p50_us
    return report_doc(
        "cold-starts",
        config,
        started,
        offered_rps=round(config.rate, 1),
        physical_limit_rows_s=round(config.limit_rows_s, 1),
        collapse_rule=f"any 429, or p50 > {COLLAPSE_P50_RATIO:g} x the baseline's p50",
        baseline=report.baseline.as_dict(),
        starts=[r.as_dict(p50) for r in report.runs],
        collapsed=len(report.collapsed()),
    )
