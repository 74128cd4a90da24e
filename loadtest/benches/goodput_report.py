"""The goodput benchmark's printed figures: a line per step as it runs, the sweep table, and the
side-by-side summary (goodput with and without batching against the physical limit, per pod
count and gateway replica count). With several replicas, the mean batch is over all their
batches, CPU is all of theirs, and the fitted F (and, per step, requests and batch) is shown
per replica."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from loadtest.benches.goodput_sweep import (
    MODES,
    GatewayFigures,
    Step,
    Sweep,
    Verdict,
    judge,
    median_sweep,
)
from loadtest.results.report import fmt_rate, fmt_us, machine_note, print_table

if TYPE_CHECKING:
    from loadtest.benches.goodput import GoodputConfig

__all__ = ["print_steps", "print_summary", "processes_note", "step_line"]


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _errors(step: Step) -> str:
    if not step.errors:
        return "0"
    kinds = ", ".join(f"{k} {n}" for k, n in step.error_kinds)
    return f"{step.errors} ({kinds})"


def _each(step: Step, figure: Callable[[GatewayFigures], float | None], digits: int) -> str:
    """A figure of each gateway replica, ``a / b / …`` ("-" when none was read)."""
    return " / ".join(_num(figure(g), digits) for g in step.per_gateway) or "-"


def _full(step: Step) -> str:
    """The share of the window's batches sent full ("-" when none was counted)."""
    sends = dict(step.sends)
    total = sum(sends.values())
    return f"{sends.get('full', 0.0) / total:.0%}" if total else "-"


def _fitted_f(step: Step) -> str:
    return _each(step, lambda g: g.fitted_fixed_ms, 1)


def _fitted_c(step: Step) -> str:
    return _each(step, lambda g: g.fitted_per_row_ms, 3)


def _replicas(step: Step) -> str:
    """With several replicas: what each received and its mean batch."""
    if len(step.per_gateway) < 2:
        return ""
    requests = _each(step, lambda g: g.requests, 0)
    return f"  per gw: requests {requests} batch {_each(step, lambda g: g.mean_batch_rows, 1)}"


def _setup(sweep: Sweep) -> str:
    return sweep.label or f"{sweep.pods} pod(s) {sweep.gateways} gw {sweep.mode}"


def step_line(sweep: Sweep, step: Step, verdict: Verdict) -> str:
    """One line per step, printed as the sweep goes."""
    return (
        f"{_setup(sweep):<20} offered {step.offered_rows_s:7.0f} rows/s "
        f"({step.fraction:.3f}) served {step.served_rows_s:7.0f}  p50 {fmt_us(step.p50_us):>8} "
        f"p99 {fmt_us(step.p99_us):>8}  errors {_errors(step)}  batch "
        f"{_num(step.mean_batch_rows, 1)} (full {_full(step)})  "
        f"gw {_num(step.gateway_cpu_us_per_req)} µs/req  "
        f"lag p99 {fmt_us(step.generator_lag_p99_us)}  fitted F {_fitted_f(step)} ms"
        f" c {_fitted_c(step)} ms/row"
        f"{_replicas(step)}  {'PASS' if verdict.passed else 'fail: ' + verdict.reason}"
    )


STEP_COLUMNS = [
    "pods / gateways\n/ mode",
    "offered rows/s\n(of limit)",
    "served\nrows/s",
    "p50",
    "p99",
    "errors",
    "mean\nbatch",
    "gateway\nCPU-µs/req",
    "fitted F ms;\nc ms/row (each gw)",
    "generator\nlag p99",
    "generator\nCPU-µs/req",
    "valid",
    "SLO",
]


def print_steps(sweeps: list[Sweep], config: GoodputConfig) -> None:
    rows = []
    for sweep in sweeps:
        for step in sweep.steps:
            verdict = judge(step, config.slo_ms, config.error_tolerance)
            rows.append(
                [
                    _setup(sweep),
                    f"{fmt_rate(step.offered_rows_s)} ({step.fraction:.3f})",
                    fmt_rate(step.served_rows_s),
                    fmt_us(step.p50_us),
                    fmt_us(step.p99_us),
                    _errors(step),
                    _num(step.mean_batch_rows, 1),
                    _num(step.gateway_cpu_us_per_req),
                    f"{_fitted_f(step)}; {_fitted_c(step)}",
                    fmt_us(step.generator_lag_p99_us),
                    _num(step.generator_cpu_us_per_req),
                    "yes" if step.valid else "NO",
                    "pass" if verdict.passed else "fail",
                ]
            )
    print_table("Goodput sweep: every step", STEP_COLUMNS, rows)


SUMMARY_COLUMNS = [
    "pods",
    "gateways",
    "physical limit\nrows/s",
    "goodput WITH\nbatching rows/s",
    "goodput WITHOUT\nbatching rows/s",
    "gateway CPU-µs/req\nwith / without",
    "mean batch rows\nwith / without",
    "p99 at goodput\nwith / without",
    "fitted F ms, each gateway\nwith / without",
]


def _goodput(sweep: Sweep | None, runs: list[Sweep]) -> str:
    if sweep is None:
        return "-"
    if sweep.goodput is None:
        text = "none passed"
    else:
        g = sweep.goodput.served_rows_s
        text = f"{fmt_rate(g)} ({100 * g / sweep.limit_rows_s:.0f}%)"
    if len(runs) > 1:
        each = sorted(0.0 if r.goodput is None else r.goodput.served_rows_s for r in runs)
        text += "\nruns " + ", ".join(fmt_rate(g) for g in each)
    return text


def _pair(a: Step | None, b: Step | None, what: str) -> str:
    def one(step: Step | None) -> str:
        if step is None:
            return "-"
        if what == "cpu":
            return _num(step.gateway_cpu_us_per_req)
        if what == "batch":
            return _num(step.mean_batch_rows, 1)
        if what == "fit":
            return _fitted_f(step)
        return fmt_us(step.p99_us)

    return f"{one(a)} / {one(b)}"


def processes_note(config: GoodputConfig) -> str:
    """How many generator processes sent the load."""
    if config.processes is not None:
        return f"{config.processes} generator process(es)"
    return f"a generator process per {fmt_rate(config.rate_per_process)} req/s offered"


def _print_target_summary(sweeps: list[Sweep], config: GoodputConfig) -> None:
    best = median_sweep(sweeps)
    g = best.goodput
    row = [
        str(config.target),
        fmt_rate(best.limit_rows_s),
        _goodput(best, sweeps),
        _num(g.gateway_cpu_us_per_req if g else None),
        _num(g.mean_batch_rows if g else None, 1),
        fmt_us(g.p99_us) if g else "-",
    ]
    columns = ["target", "given limit\nrows/s", "goodput rows/s", "gateway\nCPU-µs/req"]
    columns += ["mean batch\nrows", "p99 at\ngoodput"]
    notes = [
        f"Goodput: the most rows/s served by a step with p99 ≤ {config.slo_ms:g} ms, errors ≤ "
        f"{100 * config.error_tolerance:g}% and a generator that kept its schedule. "
        f"Open-loop Poisson arrivals, {config.rows} row(s) per request over {config.protocol}, "
        f"{processes_note(config)}; CPU only of the processes given with --pid, batch sizes only "
        "with --metrics.",
        machine_note(),
    ]
    print_table("Goodput at the p99 SLO of a running server", columns, [row], notes)


def print_summary(sweeps: list[Sweep], config: GoodputConfig) -> None:
    if config.target is not None:
        _print_target_summary(sweeps, config)
        return
    rows, fits = [], []
    for pods, gateways in dict.fromkeys((s.pods, s.gateways) for s in sweeps):
        runs = {
            m: [s for s in sweeps if (s.pods, s.gateways, s.mode) == (pods, gateways, m)]
            for m in MODES
        }
        with_b, without = (median_sweep(runs[m]) if runs[m] else None for m in MODES)
        gw = with_b.goodput if with_b else None
        gn = without.goodput if without else None
        any_sweep = with_b or without
        limit = any_sweep.limit_rows_s if any_sweep is not None else 0.0
        rows.append(
            [
                str(pods),
                str(gateways),
                fmt_rate(limit),
                _goodput(with_b, runs["batching"]),
                _goodput(without, runs["none"]),
                _pair(gw, gn, "cpu"),
                _pair(gw, gn, "batch"),
                _pair(gw, gn, "p99"),
                _pair(gw, gn, "fit"),
            ]
        )
        if gw is not None and gw.per_gateway:
            fits.append(f"{pods} pod(s) {gateways} gw {_fitted_f(gw)} + {_fitted_c(gw)}")
    notes = [
        f"Goodput: the most rows/s served by a step with p99 ≤ {config.slo_ms:g} ms, errors ≤ "
        f"{100 * config.error_tolerance:g}% and a generator that kept its schedule (lag p99 ≤ "
        f"{config.lag_limit_us / 1000:g} ms). Open-loop Poisson arrivals, {config.rows} row(s) per "
        f"request over {config.protocol}, {processes_note(config)}, "
        f"{config.duration_s:g} s per step after {config.warmup_s:g} s warm-up; latency from "
        "each request's scheduled send time.",
        f"Pods: {config.fixed_ms:g} ms + {config.per_row_ms:g} ms/row per batch, max batch "
        f"{config.max_batch}, one batch at a time. WITH: dynamic_batching, max_queue_delay "
        f"{config.max_queue_delay_us} µs (+ cost model). WITHOUT: one request per batch. The "
        f"gateways' batches to the pods over {config.backend_protocol}.",
        "Gateways: replicas with the same static endpoints, the load spread evenly over them "
        "(each generator process sends to one); CPU-µs/req is all replicas' together, mean "
        "batch over all their batches, fitted F each replica's own fit at the step's end.",
        "CPU-µs/req and mean batch: over the step's window, at the goodput step"
        + (
            f"; of {config.repeats} sweeps each, the median's (every sweep's goodput below it)."
            if config.repeats > 1
            else "."
        ),
        machine_note(),
    ]
    if fits:
        notes.insert(
            -1,
            f"Fitted cost at the goodput step WITH batching, F ms + c ms/row of each gateway "
            f"(the pods': {config.fixed_ms:g} + {config.per_row_ms:g}): {'; '.join(fits)}.",
        )
    print_table("Goodput at the p99 SLO vs the pods' physical limit", SUMMARY_COLUMNS, rows, notes)
