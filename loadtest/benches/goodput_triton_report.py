"""The tables of ``loadtest goodput --runtime triton``: each side at every offered rate, and the
goodput of each against the limit measured in the run, with the gateway's fitted F and c beside
the true ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loadtest.benches.goodput_report import processes_note
from loadtest.benches.goodput_sweep import Step, Sweep, judge, median_sweep, physical_limit
from loadtest.results.report import fmt_rate, fmt_us, machine_note, print_table

if TYPE_CHECKING:
    from loadtest.benches.goodput import GoodputConfig
    from loadtest.benches.goodput_triton import MeasuredLimit, TritonModel

__all__ = ["fitted_cost", "print_rates", "print_triton_summary", "rate_rows", "sides"]


def sides(sweeps: list[Sweep]) -> dict[str, Sweep]:
    """Each side (by its label) once: the median of its repeats."""
    runs: dict[str, list[Sweep]] = {}
    for s in sweeps:
        runs.setdefault(s.label or s.mode, []).append(s)
    return {label: median_sweep(group) for label, group in runs.items()}


def _cell(step: Step | None, slo_ms: float, tolerance: float) -> list[str]:
    if step is None:
        return ["-", "-", "-"]
    verdict = judge(step, slo_ms, tolerance)
    served = fmt_rate(step.served_rows_s) + ("" if verdict.passed else " ✗")
    batch = "-" if step.mean_batch_rows is None else f"{step.mean_batch_rows:.1f}"
    return [served, fmt_us(step.p99_us), batch]


def rate_rows(sweeps: list[Sweep], slo_ms: float, tolerance: float) -> list[list[str]]:
    """A row per offered fraction any side ran (ascending): the offered rows/s, then each
    side's served rows/s (``✗``: failed the SLO), p99 and mean batch ("-": not run there)."""
    by_side = sides(sweeps)
    offered = {st.fraction: st.offered_rows_s for s in by_side.values() for st in s.steps}
    rows = []
    for f in sorted(offered):
        row = [f"{fmt_rate(offered[f])} ({f:.3f})"]
        for s in by_side.values():
            last = [st for st in s.steps if st.fraction == f][-1:]  # a rerun's final try
            row += _cell(last[0] if last else None, slo_ms, tolerance)
        rows.append(row)
    return rows


def print_rates(sweeps: list[Sweep], config: GoodputConfig) -> None:
    columns = ["offered rows/s\n(of limit)"]
    for label in sides(sweeps):
        columns += [f"{label}\nserved rows/s", "p99", "mean\nbatch"]
    notes = [
        "✗: the step failed the SLO (p99, errors or the generator's schedule); "
        "mean batch: the gateway's batches, or the batches Triton executed (its metrics)."
    ]
    rows = rate_rows(sweeps, config.slo_ms, config.error_tolerance)
    print_table("Each side at each offered rate", columns, rows, notes)


def fitted_cost(step: Step | None) -> str:
    """The gateway's fitted ``F ms / c ms/row`` at ``step``, each replica's ("-": none)."""
    if step is None or not step.per_gateway:
        return "-"

    def one(fixed: float | None, per_row: float | None) -> str:
        f = "-" if fixed is None else f"{fixed:.2f}"
        return f"{f} / {'-' if per_row is None else f'{per_row:.3f}'}"

    return "; ".join(one(g.fitted_fixed_ms, g.fitted_per_row_ms) for g in step.per_gateway)


SUMMARY_COLUMNS = [
    "side",
    "goodput rows/s\n(of measured limit)",
    "p99 at\ngoodput",
    "mean batch\nat goodput",
    "gateway\nCPU-µs/req",
    "fitted F ms / c ms/row\nat goodput",
    "fitted F ms / c ms/row\nafter the last step",
]


def _goodput(sweep: Sweep) -> str:
    if sweep.goodput is None:
        return "none passed"
    g = sweep.goodput.served_rows_s
    return f"{fmt_rate(g)} ({g / sweep.limit_rows_s:.3f})"


def print_triton_summary(
    sweeps: list[Sweep],
    config: GoodputConfig,
    limits: Sequence[MeasuredLimit],
    sim: TritonModel,
    batched: TritonModel,
) -> None:
    rows = []
    for label, s in sides(sweeps).items():
        g = s.goodput
        cpu = None if g is None else g.gateway_cpu_us_per_req
        rows.append(
            [
                label,
                _goodput(s),
                "-" if g is None else fmt_us(g.p99_us),
                "-" if g is None or g.mean_batch_rows is None else f"{g.mean_batch_rows:.1f}",
                "-" if cpu is None else f"{cpu:.0f}",
                fitted_cost(g),
                fitted_cost(s.steps[-1] if s.steps else None),
            ]
        )
    analytic = physical_limit(1, sim.fixed_ms, sim.per_row_ms, sim.max_batch)
    limit = max(m.rows_s for m in limits)
    first = limits[0]
    measured = " and ".join(
        f"{fmt_rate(m.rows_s)} (p99 {fmt_us(m.p99_us)}, errors {m.errors})" for m in limits
    )
    notes = [
        f"Measured limit: {first.batch_rows}-row requests sent straight to Triton's {sim.name} "
        f"(closed loop, concurrency {first.concurrency}, {first.protocol}, {config.duration_s:g} "
        f"s) before and after the sweeps: {measured} rows/s. Goodput is a fraction of the higher, "
        f"{fmt_rate(limit)} ({limit / analytic:.3f} of the device's {fmt_rate(analytic)} rows/s, "
        f"full batches back to back); the offered loads are fractions of the first.",
        f"True cost ({sim.name}'s config.pbtxt): F {sim.fixed_ms:g} ms, c {sim.per_row_ms:g} "
        f"ms/row, max batch {sim.max_batch}, one instance. The gateway batches in front of "
        f"{sim.name} (Triton's batcher off; max_queue_delay {config.max_queue_delay_us} µs, + "
        f"cost model; its batches over {config.backend_protocol}); {batched.name} is the same "
        f"device with Triton's dynamic_batching (max_queue_delay {batched.max_queue_delay_us} "
        "µs), sent to directly.",
        f"Goodput: the most rows/s served by a step with p99 ≤ {config.slo_ms:g} ms, errors ≤ "
        f"{100 * config.error_tolerance:g}% and a generator that kept its schedule. Open-loop "
        f"Poisson arrivals, {config.rows} row(s) per request over {config.protocol}, "
        f"{processes_note(config)}, {config.duration_s:g} s per step after {config.warmup_s:g} s "
        "warm-up; every grid point on both sides, then each side's own bisection.",
        "Gateway CPU-µs/req: the gateway replicas' CPU over the step's window per request.",
        machine_note(),
    ]
    title = f"Goodput at the p99 SLO in front of a real Triton (measured limit {fmt_rate(limit)})"
    print_table(title, SUMMARY_COLUMNS, rows, notes)
