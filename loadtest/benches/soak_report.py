"""The soak's printed figures and JSON report: a line at each interval's end while it runs, then
tables of the resources at each interval's end, the requests per interval (by the interval they
were sent in) and per lane, the trends with their flat rule, and the verdict."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from loadtest.benches.soak_mix import OUTCOMES, Lane, Tally
from loadtest.benches.soak_trend import (
    FLOORS,
    METRICS,
    RELATIVE_LIMIT,
    Figures,
    Reading,
    Trend,
    at_interval_ends,
)
from loadtest.results.open_loop_result import OVERFLOW
from loadtest.results.report import machine_note, print_table, report_doc

if TYPE_CHECKING:
    from loadtest.benches.soak import SoakConfig, SoakRun

__all__ = ["FLAT_RULE", "print_interval", "print_report", "resources_line", "soak_doc"]

_MIB = 1024**2
FLAT_RULE = (
    f"flat: the least-squares growth over the window is at most {RELATIVE_LIMIT:.0%} of the "
    f"mean or a floor (RSS {FLOORS['rss_bytes'] / _MIB:g} MiB, fds {FLOORS['fds']:g}, tasks "
    f"{FLOORS['tasks']:g}), whichever is larger; falling is flat. A server's fds are judged "
    "less the established connections on its HTTP port (the clients' keep-alive pools)"
)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / _MIB:.1f}"


def resources_line(figures: dict[str, Figures]) -> str:
    """Each process's RSS, fds and tasks (where read) on one line."""
    parts = []
    for name, f in figures.items():
        text = f"{name} RSS {_mib(f.get('rss_bytes'))} MiB fds {_num(f.get('fds'))}"
        if f.get("http_conns") is not None:
            text += f" (HTTP conns {_num(f.get('http_conns'))})"
        if f.get("tasks") is not None:
            text += f" tasks {_num(f.get('tasks'))}"
        parts.append(text)
    return " | ".join(parts)


def _span(config: SoakConfig, k: int) -> str:
    return f"{k * config.interval_s:g}-{min((k + 1) * config.interval_s, config.duration_s):g} s"


def print_interval(config: SoakConfig, k: int, reading: Reading) -> None:
    """The live line at interval ``k``'s end."""
    line = f"interval {k + 1}/{config.intervals} ({_span(config, k)}): "
    print(line + resources_line(reading.procs), flush=True)


def _outcomes(counts: Counter[str], names: tuple[str, ...]) -> list[str]:
    return [_num(counts.get(n, 0)) for n in names]


def _interval_rows(config: SoakConfig, run: SoakRun) -> list[list[str]]:
    lanes = [lane for lane, _ in run.lanes]
    rows = []
    for label, k in [("warm-up", -1), *((_span(config, k), k) for k in range(config.intervals))]:
        cat = run.tally.by_category(lanes, k)
        if k == -1 and not any(cat.values()):
            continue
        good = cat["good"]
        rows.append(
            [
                label,
                _num(sum(good.values())),
                *_outcomes(good, OUTCOMES["good"]),
                *_outcomes(cat["bad"], OUTCOMES["bad"]),
                *_outcomes(cat["disconnect"], OUTCOMES["disconnect"]),
            ]
        )
    return rows


def _lane_rows(run: SoakRun) -> list[list[str]]:
    rows = []
    for lane, share in run.lanes:
        counts = run.tally.outcomes(lane=lane.name)
        kinds = ", ".join(
            f"{kind} {n}"
            for (name, kind), n in sorted(run.tally.kinds.items())
            if name == lane.name
        )
        outcomes = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        rows.append([lane.name, f"{share:.1%}", _num(sum(counts.values())), outcomes, kinds or "-"])
    return rows


def _value(metric: str, value: float) -> str:
    return _mib(value) if metric == "rss_bytes" else _num(value, 1)


def _trend_row(t: Trend) -> list[str]:
    unit = " MiB" if t.metric == "rss_bytes" else ""
    label = {"rss_bytes": "RSS", "fds": "fds less HTTP conns" if t.less_http_conns else "fds"}
    return [
        f"{t.process} {label.get(t.metric, t.metric)}{unit}",
        _value(t.metric, t.first),
        _value(t.metric, t.last),
        _value(t.metric, t.mean),
        _value(t.metric, t.slope_per_min) if t.metric != "rss_bytes" else _mib(t.slope_per_min),
        _value(t.metric, t.growth),
        _value(t.metric, t.allowed),
        "yes" if t.flat else "NO",
    ]


def _resource_table(config: SoakConfig, run: SoakRun) -> tuple[list[str], list[list[str]]]:
    names = [w.name for w in run.sampler.watched]
    columns = ["interval"]
    for w in run.sampler.watched:
        columns += [f"{w.name} RSS MiB", f"{w.name} fds"]
        if w.http_port is not None:
            columns.append(f"{w.name} HTTP conns")
        if w.metrics_url is not None:
            columns.append(f"{w.name} tasks")
    rows = []
    ends = [run.sampler.readings[0] if run.sampler.readings else None]
    ends += at_interval_ends(run.sampler.readings, config.interval_s, config.intervals)
    labels = ["start"] + [
        f"at {min((k + 1) * config.interval_s, config.duration_s):g} s"
        for k in range(config.intervals)
    ]
    for label, reading in zip(labels, ends, strict=True):
        row = [label]
        for name in names:
            f = {} if reading is None else reading.procs.get(name, {})
            row += [_mib(f.get("rss_bytes")), _num(f.get("fds"))]
            if f"{name} HTTP conns" in columns:
                row.append(_num(f.get("http_conns")))
            if f"{name} tasks" in columns:
                row.append(_num(f.get("tasks")))
        rows.append(row)
    return columns, rows


def print_report(config: SoakConfig, run: SoakRun) -> None:
    """Every table, the notes and the verdict."""
    columns, rows = _resource_table(config, run)
    print_table("soak: resources at each interval's end", columns, rows)
    print_table(
        "soak: requests by the interval they were sent in",
        [
            "sent in",
            "good",
            *OUTCOMES["good"],
            "bad as expected",
            "bad rejected",
            "bad wrongly",
            "cut",
            "answered first",
            "cut error",
        ],
        _interval_rows(config, run),
        notes=[f"not sent (generator overflow): {run.result.errors.get(OVERFLOW, 0)}"],
    )
    print_table(
        "soak: by lane", ["lane", "share", "sent", "outcomes", "error kinds"], _lane_rows(run)
    )
    print_table(
        "soak: trends over the window",
        ["figure", "first", "last", "mean", "per min", "growth", "allowed", "flat"],
        [_trend_row(t) for t in run.trends],
        notes=[FLAT_RULE, machine_note()],
    )
    if run.passed:
        print("soak PASSED: nothing admitted lost, bad requests refused, every figure flat")
    else:
        print("soak FAILED: " + "; ".join(run.reasons))


def _lane_totals(tally: Tally, lanes: list[Lane]) -> dict[str, Any]:
    return {
        lane.name: {
            "outcomes": dict(tally.outcomes(lane=lane.name)),
            "error_kinds": {k: n for (name, k), n in tally.kinds.items() if name == lane.name},
        }
        for lane in lanes
    }


def soak_doc(config: SoakConfig, run: SoakRun, started: float, limit: float) -> dict[str, Any]:
    """The JSON report of a soak started at ``started`` (Unix seconds)."""
    lanes = [lane for lane, _ in run.lanes]
    ends = at_interval_ends(run.sampler.readings, config.interval_s, config.intervals)
    intervals = []
    for k in range(config.intervals):
        reading = ends[k]
        intervals.append(
            {
                "interval": k,
                "from_s": k * config.interval_s,
                "to_s": min((k + 1) * config.interval_s, config.duration_s),
                "resources": None if reading is None else reading.as_dict(),
                "requests": {c: dict(v) for c, v in run.tally.by_category(lanes, k).items()},
                "lanes": run.tally.lane_outcomes(k, lanes),
            }
        )
    warmup = run.tally.by_category(lanes, -1)
    return report_doc(
        "soak",
        config,
        started,
        limit_rows_s=round(limit, 1),
        lanes=[
            {"name": lane.name, "category": lane.category, "wire": lane.wire, "share": share}
            for lane, share in run.lanes
        ],
        processes=[w.name for w in run.sampler.watched],
        flat_rule=FLAT_RULE,
        metrics=list(METRICS),
        intervals=intervals,
        warmup={"requests": {c: dict(v) for c, v in warmup.items()}},
        totals={
            "requests": {c: dict(v) for c, v in run.tally.by_category(lanes).items()},
            "unsent": run.result.errors.get(OVERFLOW, 0),
            "lanes": _lane_totals(run.tally, lanes),
        },
        trends=[t.as_dict() for t in run.trends],
        readings=[r.as_dict() for r in run.sampler.readings],
        load=run.result.as_dict(),
        passed=run.passed,
        reasons=run.reasons,
        gone=run.gone,
    )
