"""``loadtest ceiling``: how many requests/s one generator process can send, per protocol.

One open-loop generator process (``processes=1``) climbs a ladder of rates against a simulated
pod that costs nothing per batch (``F = c = 0``), until two rates in a row are not *sustained*
(each tried twice): the generator fell behind its schedule (``open_loop_result.invalid_reason``),
or more than a small fraction of the requests due failed or went unanswered. Two figures come out
per protocol:

- the highest rate sustained, a lower bound on the ceiling (on a small machine the pod, sharing
  the CPUs, may give out first: ``limited_by`` says which side a failing step points to);
- the *estimated* ceiling, ``1e6 / CPU-µs per request`` of the generator process at that step:
  the rate at which it would use one whole core, which holds whoever gave out first.

The choice of step and the estimate are pure (``ceiling_of``), tested without a server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtest.clients.base import STANDARD_KINDS, ClientSpec, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig, run_open_loop
from loadtest.probes.cpu import CpuWindow
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.results.report import (
    fmt_cpu_us,
    fmt_rate,
    fmt_us,
    machine_note,
    print_table,
    report_doc,
    write_json,
)
from loadtest.stack.procs import PodProc, running, start_pod
from loadtest.stack.simpod_args import SimPod

__all__ = [
    "CeilingConfig",
    "CeilingFigure",
    "CeilingStep",
    "ceiling_doc",
    "ceiling_of",
    "limited_by",
    "run_ceiling",
    "stop_climbing",
    "unsustained_reason",
]

DEFAULT_JSON = Path("reports/bench-ceiling.json")
DEFAULT_RATES = (500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0, 12000.0, 16000.0)


@dataclass(frozen=True, slots=True)
class CeilingConfig:
    protocols: tuple[str, ...] = STANDARD_KINDS
    rates: tuple[float, ...] = DEFAULT_RATES
    duration_s: float = 3.0
    warmup_s: float = 1.0
    error_tolerance: float = 0.01  # of the requests due
    retries: int = 1  # more runs of a rate that failed, before it counts as failed
    stop_after: int = 2  # failed rates in a row that end the climb
    timeout_s: float = 5.0
    verify_every: int = 64
    json_path: Path = DEFAULT_JSON


@dataclass(frozen=True, slots=True)
class CeilingStep:
    """One rate and what the generator process did at it."""

    rate: float
    due: int
    ok: int
    errors: int
    generator_cpu_us_per_req: float | None
    lag_p99_us: int
    invalid_reason: str = ""
    pod_cpu_fraction: float | None = None  # of one core, over the window
    p50_us: int = 0
    error_kinds: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_kinds": dict(self.error_kinds)}


def unsustained_reason(step: CeilingStep, error_tolerance: float) -> str:
    """Why the generator did not sustain ``step`` ("" when it did): it fell behind its
    schedule, or the requests due did not come back (errors, overflow, unanswered)."""
    if step.invalid_reason:
        return step.invalid_reason
    if step.due == 0:
        return "nothing due"
    missing = step.due - step.ok
    if step.errors > error_tolerance * step.due or missing > error_tolerance * step.due:
        kinds = ", ".join(f"{k} {n}" for k, n in step.error_kinds) or "errors"
        return f"{step.ok}/{step.due} answered ({kinds})"
    return ""


def limited_by(step: CeilingStep | None, error_tolerance: float) -> str:
    """Which side an unsustained step points to: ``generator`` (it fell behind) or ``server``
    (answers missing while the generator kept up); ``none`` when ``step`` is None or passed."""
    if step is None or not unsustained_reason(step, error_tolerance):
        return "none"
    return "generator" if step.invalid_reason else "server"


@dataclass(frozen=True, slots=True)
class CeilingFigure:
    """A protocol's ladder and what it shows."""

    protocol: str
    steps: tuple[CeilingStep, ...]
    best: CeilingStep | None  # the highest rate sustained
    stopped: str  # why the ladder stopped: the first unsustained step's reason, or "top rate"
    limited_by: str  # generator, server, or none (the ladder's top rate was sustained)

    @property
    def sustained_rps(self) -> float | None:
        return None if self.best is None else self.best.rate

    @property
    def cpu_us_per_req(self) -> float | None:
        return None if self.best is None else self.best.generator_cpu_us_per_req

    @property
    def estimate_rps(self) -> float | None:
        """Requests/s at which the generator process would use one whole core."""
        cpu = self.cpu_us_per_req
        return None if not cpu else 1e6 / cpu

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "highest_sustained_rps": self.sustained_rps,
            "generator_cpu_us_per_req": _round(self.cpu_us_per_req),
            "estimated_ceiling_rps": _round(self.estimate_rps),
            "stopped": self.stopped,
            "limited_by": self.limited_by,
            "steps": [s.as_dict() for s in self.steps],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def ceiling_of(
    protocol: str, steps: Sequence[CeilingStep], error_tolerance: float
) -> CeilingFigure:
    """The ladder's figure: the best is the highest rate sustained (a failure below it was the
    machine's noise, not the generator's limit); ``stopped`` is why the first step above the
    best was not sustained, or "top rate" when none was run."""
    sustained = [s for s in steps if not unsustained_reason(s, error_tolerance)]
    best = max(sustained, key=lambda s: s.rate, default=None)
    floor = -1.0 if best is None else best.rate
    above = [s for s in steps if s.rate > floor]
    if not above:
        return CeilingFigure(protocol, tuple(steps), best, "top rate", "none")
    first = min(above, key=lambda s: s.rate)
    reason = unsustained_reason(first, error_tolerance)
    return CeilingFigure(protocol, tuple(steps), best, reason, limited_by(first, error_tolerance))


def stop_climbing(steps: Sequence[CeilingStep], error_tolerance: float, stop_after: int) -> bool:
    """Whether the last ``stop_after`` rates in a row were not sustained."""
    tail = steps[-stop_after:]
    return len(tail) == stop_after and all(unsustained_reason(s, error_tolerance) for s in tail)


def _step(config: CeilingConfig, kind: str, pod: PodProc, rate: float) -> CeilingStep:
    target = pod.grpc_address if is_grpc(kind) else pod.http_url
    spec = ClientSpec(
        kind, target, SimPayload(), verify_every=config.verify_every, timeout_s=config.timeout_s
    )
    load = OpenLoopConfig(
        rate=rate,
        duration_s=config.duration_s,
        warmup_s=config.warmup_s,
        processes=1,
        drain_s=config.timeout_s + 1.0,
    )
    probe = CpuWindow({"pod": pod})
    result = run_open_loop(spec, load, probe)
    return _to_step(rate, result, probe.seconds.get("pod"), config.duration_s)


def _to_step(
    rate: float, result: OpenLoopResult, pod_cpu_s: float | None, window_s: float
) -> CeilingStep:
    return CeilingStep(
        rate=rate,
        due=result.due,
        ok=result.ok,
        errors=result.error_count,
        generator_cpu_us_per_req=result.cpu_us_per_request,
        lag_p99_us=result.lag().p99_us,
        invalid_reason=result.invalid,
        pod_cpu_fraction=None if pod_cpu_s is None else pod_cpu_s / window_s,
        p50_us=result.summary().p50_us,
        error_kinds=tuple(sorted(result.errors.items())),
    )


def _climb(config: CeilingConfig, kind: str, pod: PodProc) -> CeilingFigure:
    """Climb the rates; a step that fails is run again ``retries`` times (the machine is shared
    and one stall can sink a short step), keeping the last try."""
    steps: list[CeilingStep] = []
    for rate in config.rates:
        for attempt in range(config.retries + 1):
            step = _step(config, kind, pod, rate)
            reason = unsustained_reason(step, config.error_tolerance)
            cpu = fmt_cpu_us(step.generator_cpu_us_per_req)
            print(
                f"  {kind:<11} {rate:>8,.0f}/s: {step.ok}/{step.due} ok, generator {cpu} "
                f"CPU-µs/req, lag p99 {fmt_us(step.lag_p99_us)}: {reason or 'sustained'}"
                + (f" (try {attempt + 1})" if attempt else ""),
                flush=True,
            )
            time.sleep(0.3)  # let the pod settle
            if not reason:
                break
        steps.append(step)
        if stop_climbing(steps, config.error_tolerance, config.stop_after):
            break
    return ceiling_of(kind, steps, config.error_tolerance)


def run_ceiling(config: CeilingConfig) -> list[CeilingFigure]:
    """Climb the ladder for every protocol against one zero-cost pod; print, write JSON."""
    started = time.time()
    pod = start_pod(SimPod().args(quiet=True))
    with running(pod):
        figures = [_climb(config, kind, pod) for kind in config.protocols]
    _report(config, figures)
    write_json(config.json_path, ceiling_doc(config, figures, started))
    print(f"wrote {config.json_path}")
    return figures


COLUMNS = [
    "protocol",
    "highest sustained\nreq/s",
    "generator\nCPU-µs/req",
    "estimate\nreq/s",
    "limited by",
    "stopped",
]


def _report(config: CeilingConfig, figures: Sequence[CeilingFigure]) -> None:
    rows = [
        [
            f.protocol,
            fmt_rate(f.sustained_rps),
            fmt_cpu_us(f.cpu_us_per_req),
            fmt_rate(f.estimate_rps),
            f.limited_by,
            f.stopped,
        ]
        for f in figures
    ]
    print_table(
        "Generator ceiling: one open-loop process",
        COLUMNS,
        rows,
        [
            f"Open loop (Poisson), 1 generator process, {config.duration_s:g} s per step after "
            f"{config.warmup_s:g} s warm-up, against one simpod with F = c = 0. Sustained: "
            "generator lag p99 and end lag within the limit, errors and unanswered "
            f"<= {config.error_tolerance:.0%}. estimate = 1e6 / CPU-µs per request at the "
            "highest sustained rate (one whole core).",
            machine_note(),
        ],
    )


def ceiling_doc(
    config: CeilingConfig, figures: Sequence[CeilingFigure], started: float
) -> dict[str, Any]:
    """The JSON report of a run started at ``started`` (Unix seconds)."""
    return report_doc("ceiling", config, started, results=[f.as_dict() for f in figures])
