"""The goodput search, pure: what one sweep step measured, whether it met the SLO, which offered
load to try next, and the goodput a sweep found.

Goodput is the highest rate of rows served by a step whose p99 latency met the SLO, whose errors
stayed within a tolerance and whose generator kept its schedule. The sweep climbs a grid of
offered loads (fractions of the pods' physical limit) until ``stop_after`` steps in a row fail,
then bisects ``refine`` times between the best passing fraction and the failing one above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_GRID",
    "MODES",
    "GatewayFigures",
    "Step",
    "Sweep",
    "Verdict",
    "judge",
    "median_sweep",
    "next_fraction",
    "physical_limit",
    "select_goodput",
]

MODES = ("batching", "none")  # with dynamic batching, one request per batch
DEFAULT_GRID = (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1)


def physical_limit(
    pods: int, fixed_ms: float, per_row_ms: float, max_batch: int, devices: int = 1
) -> float:
    """Rows/s the pods serve at most: every device busy with full batches, back to back."""
    batch_s = (fixed_ms + per_row_ms * max_batch) / 1000
    return float("inf") if batch_s <= 0 else pods * devices * max_batch / batch_s


@dataclass(frozen=True, slots=True)
class GatewayFigures:
    """What one gateway replica did over a step's window, from its ``/metrics``: requests it
    received, rows and batches it sent (and why it sent them: ``sends``, batches by the
    batcher's reason), and its fitted batch cost ``F + c·n`` at the end."""

    name: str
    requests: float
    batch_rows: float
    batches: float
    fitted_fixed_ms: float | None = None
    fitted_per_row_ms: float | None = None
    sends: tuple[tuple[str, float], ...] = ()

    @property
    def mean_batch_rows(self) -> float | None:
        return self.batch_rows / self.batches if self.batches > 0 else None


@dataclass(frozen=True, slots=True)
class Step:
    """One offered load and what came of it. Latencies in µs, rates in rows/s."""

    fraction: float
    offered_rows_s: float
    served_rows_s: float
    due: int  # requests due in the window
    ok: int
    errors: int
    p50_us: int
    p99_us: int
    valid: bool  # the generator kept its schedule
    mean_batch_rows: float | None = None
    gateway_cpu_us_per_req: float | None = None
    generator_lag_p99_us: int = 0
    generator_cpu_us_per_req: float | None = None
    error_kinds: tuple[tuple[str, int], ...] = ()
    invalid_reason: str = ""
    per_gateway: tuple[GatewayFigures, ...] = ()  # each replica's figures, when read
    sends: tuple[tuple[str, float], ...] = ()  # batches by reason to send, every replica read

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["error_kinds"] = dict(self.error_kinds)
        doc["per_gateway"] = [
            {**asdict(g), "mean_batch_rows": g.mean_batch_rows, "sends": dict(g.sends)}
            for g in self.per_gateway
        ]
        doc["sends"] = dict(self.sends)
        return doc


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a step counts for goodput, and if not why."""

    passed: bool
    reason: str = ""


def judge(step: Step, slo_ms: float, error_tolerance: float) -> Verdict:
    """A step passes when it is valid, served something, kept p99 ≤ SLO and errors ≤ tolerance
    (a fraction of the requests due)."""
    if not step.valid:
        return Verdict(False, f"invalid: {step.invalid_reason or 'generator fell behind'}")
    if step.ok == 0:
        return Verdict(False, "nothing served")
    if step.errors > error_tolerance * max(1, step.due):
        return Verdict(False, f"errors {step.errors}/{step.due}")
    if step.p99_us > slo_ms * 1000:
        return Verdict(False, f"p99 {step.p99_us / 1000:.1f} ms > {slo_ms:g} ms")
    return Verdict(True)


def select_goodput(steps: Sequence[Step], slo_ms: float, error_tolerance: float) -> Step | None:
    """The passing step that served the most rows/s, or None when none passed."""
    passing = [s for s in steps if judge(s, slo_ms, error_tolerance).passed]
    return max(passing, key=lambda s: s.served_rows_s, default=None)


def next_fraction(
    tried: Sequence[tuple[float, bool]],
    grid: Sequence[float] = DEFAULT_GRID,
    *,
    stop_after: int = 2,
    refine: int = 2,
    min_gap: float = 0.01,
) -> float | None:
    """The next offered load (a fraction of the limit) to try, or None when the sweep is done.

    ``tried`` is every (fraction, passed) so far, in the order run. Grid points come first, in
    ascending order, until ``stop_after`` of them in a row fail; then up to ``refine`` bisections
    between the best passing fraction (or 0) and the lowest failing one above it.
    """
    done = {f for f, _ in tried}
    grid_results = [(f, ok) for f, ok in tried if f in set(grid)]
    trailing = 0
    for _, ok in reversed(grid_results):
        if ok:
            break
        trailing += 1
    if trailing < stop_after:
        for g in sorted(grid):
            if g not in done:
                return g
    refinements = len(tried) - len(grid_results)
    if refinements >= refine:
        return None
    best = max((f for f, ok in tried if ok), default=0.0)
    above = [f for f, ok in tried if not ok and f > best]
    if not above:
        return None
    low_fail = min(above)
    if low_fail - best < min_gap:
        return None
    mid = round((best + low_fail) / 2, 4)
    return None if mid in done else mid


@dataclass(slots=True)
class Sweep:
    """One pod count, gateway replica count and gateway config: every step, in the order run,
    and the goodput."""

    pods: int
    mode: str
    limit_rows_s: float
    steps: list[Step] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    goodput: Step | None = None
    run: int = 0  # which of the config's repeats
    gateways: int = 1  # gateway replicas in front of the pods, the load spread over them
    label: str = ""  # how reports name the setup ("": pods, gateways and mode)


def median_sweep(sweeps: list[Sweep]) -> Sweep:
    """The sweep whose goodput is the median of ``sweeps`` (none passed counts as 0; of an even
    count, the lower middle)."""
    ranked = sorted(sweeps, key=lambda s: 0.0 if s.goodput is None else s.goodput.served_rows_s)
    return ranked[(len(ranked) - 1) // 2]
