"""``loadtest autoscale``: the real loop on step, spike and square traces, policy beside policy.

For each trace, each policy runs one after the other against a loop of its own (``loop_run``),
each from 1 pod; then a table shows the policies side by side: SLO-violation seconds, 429s,
replica-seconds, ready-pod-seconds, scale changes and the reaction to the trace's first rise.
It writes one JSON report (every run's figures, seconds and samples) and a PNG per run.

The traces: ``step`` (``base_rate`` until a third of the way, then ``base x peak_factor``),
``spike`` (the peak for a tenth of the trace, at least 2 s, from a third of the way) and
``square`` (base, then peak, each for a quarter of the trace). ``quick`` cuts everything to
seconds: its figures only show that the bench runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtest.benches.loop_run import POLICIES, LoopRunConfig, run_one
from loadtest.results.report import machine_note, print_table, write_json
from loadtest.traces.shapes import Trace, spike, square, step

__all__ = ["AUTOSCALE_TRACES", "AutoscaleConfig", "autoscale_traces", "run_autoscale"]

AUTOSCALE_TRACES = ("step", "spike", "square")


@dataclass(frozen=True, slots=True)
class AutoscaleConfig:
    traces: tuple[str, ...] = AUTOSCALE_TRACES
    policies: tuple[str, ...] = POLICIES
    duration_s: float = 60.0
    base_rate: float = 80.0  # requests/s
    peak_factor: float = 10.0
    quick: bool = False
    json_path: Path | None = None
    out_dir: Path = Path("reports/autoscale")
    plots: bool = True
    run: LoopRunConfig = field(default_factory=LoopRunConfig)

    def __post_init__(self) -> None:
        bad = [t for t in self.traces if t not in AUTOSCALE_TRACES]
        bad += [p for p in self.policies if p not in POLICIES]
        if bad:
            raise ValueError(f"unknown traces or policies {bad}")
        if self.base_rate * self.peak_factor > 1500:
            raise ValueError("the peak (base_rate x peak_factor) must stay within 1,500 req/s")

    def effective(self) -> AutoscaleConfig:
        """``quick``: 8-second traces at a tenth of the rates."""
        if not self.quick:
            return self
        return replace(self, duration_s=8.0, base_rate=20.0, peak_factor=5.0)


def autoscale_traces(config: AutoscaleConfig) -> list[Trace]:
    c = config.effective()
    base, peak, d = c.base_rate, c.base_rate * c.peak_factor, c.duration_s
    built = {
        "step": lambda: step(base, peak, d, at_s=d / 3),
        "spike": lambda: spike(base, peak, d, at_s=d / 3, width_s=max(2.0, d / 10)),
        "square": lambda: square(base, peak, d, period_s=d / 2),
    }
    return [built[name]() for name in c.traces]


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


_ROWS: tuple[tuple[str, str, int], ...] = (
    ("SLO-violation s", "slo_violation_s", 0),
    ("429s", "rejected_429", 0),
    ("errors (all)", "errors", 0),
    ("answered / due", "ok_due", 0),
    ("replica-s", "replica_s", 1),
    ("ready-pod-s", "ready_pod_s", 1),
    ("scale changes", "scale_changes", 0),
    ("most replicas", "max_replicas", 0),
    ("rise -> first patch s", "to_first_patch_s", 2),
    ("rise -> capacity ready s", "to_capacity_s", 2),
    ("valid load", "valid", 0),
)


def _cell(run: dict[str, Any], key: str, digits: int) -> str:
    f = run["figures"]
    if key == "ok_due":
        return f"{f['ok']:,} / {f['due']:,}"
    if key == "valid":
        return "yes" if run["valid"] else "NO"
    if key.startswith("to_"):
        return _fmt((f["reaction"] or {}).get(key), digits)
    return _fmt(f[key], digits)


def print_trace(trace: Trace, runs: list[dict[str, Any]], slo_ms: float) -> None:
    """The policies side by side on one trace."""
    rows = [[label, *(_cell(r, key, digits) for r in runs)] for label, key, digits in _ROWS]
    peak = max(trace.rates)
    title = (
        f"autoscale: {trace.name} trace, {min(trace.rates):g} -> {peak:g} req/s over "
        f"{trace.duration_s:g} s, p99 SLO {slo_ms:g} ms"
    )
    notes = [
        "SLO-violation s: seconds whose p99 > SLO (or nothing answered); replica-s: "
        "∫ spec.replicas dt; ready-pod-s: ∫ readyReplicas dt; rise: the trace's first rise",
        machine_note(),
    ]
    print_table(title, ["figure", *(r["policy"] for r in runs)], rows, notes)


def run_autoscale(config: AutoscaleConfig) -> dict[str, Any]:
    """Every trace under every policy; print the tables, write the JSON and the plots."""
    c = config.effective()
    run_config = replace(c.run, log_dir=c.out_dir / "logs")
    started = time.time()
    runs: list[dict[str, Any]] = []
    for trace in autoscale_traces(c):
        mine = []
        for policy in c.policies:
            print(f"autoscale: {trace.name} trace, {policy} policy ...", flush=True)
            run = run_one(trace, policy, run_config)
            if c.plots:
                from loadtest.benches.loop_plots import write_run_plot

                png = write_run_plot(run, c.out_dir / f"{trace.name}-{policy}.png")
                run["plot"] = str(png)
            mine.append(run)
        print_trace(trace, mine, run_config.slo_ms)
        runs.extend(mine)
    doc = {
        "benchmark": "autoscale",
        "started_unix": round(started, 3),
        "config": _config_dict(c),
        "note": machine_note(),
        "traces": [t.describe() for t in autoscale_traces(c)],
        "runs": runs,
    }
    path = c.json_path or c.out_dir / "autoscale.json"
    write_json(path, doc)
    print(f"wrote {path}" + (f" and the plots in {c.out_dir}" if c.plots else ""))
    return doc


def _config_dict(c: AutoscaleConfig) -> dict[str, Any]:
    doc = asdict(c)
    doc["json_path"] = None if c.json_path is None else str(c.json_path)
    doc["out_dir"] = str(c.out_dir)
    doc["run"]["log_dir"] = str(c.out_dir / "logs")
    return doc
