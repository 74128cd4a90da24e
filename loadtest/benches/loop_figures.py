"""The figures of one ``loadtest autoscale`` run, from its seconds and its samples. Pure.

- **SLO-violation seconds**: seconds of the trace whose answered requests' p99 is over the SLO,
  or in which requests were due and none was answered.
- **replica-seconds** / **ready-pod-seconds**: ∫ spec.replicas dt and ∫ readyReplicas dt over
  the window, each sample's value held until the next.
- **scale changes**: the autoscaler's patches to the scale subresource in the window.
- **reaction**: from the trace's first rise (the step, the spike, the square wave's first high
  half) to the first patch (the patch counter, or spec.replicas, moving), and to the new
  capacity serving: readyReplicas reaching the most replicas asked for before the rise ends
  (or by the first patch, where that comes later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from loadtest.benches.loop_sampler import LoopSample
from loadtest.traces.shapes import Trace

__all__ = ["SecondRow", "first_rise", "loop_figures", "reaction", "time_integral"]

TOO_MANY = "http 429"


@dataclass(frozen=True, slots=True)
class SecondRow:
    """One second of the load, by scheduled second."""

    second: int
    offered: float  # requests the trace offered in it
    due: int
    ok: int
    p99_ms: float | None
    rejected: int  # 429s
    errors: int  # all errors, 429s included

    def as_dict(self) -> dict[str, Any]:
        return {
            "second": self.second,
            "offered": round(self.offered, 1),
            "due": self.due,
            "ok": self.ok,
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 2),
            "rejected_429": self.rejected,
            "errors": self.errors,
        }


def first_rise(trace: Trace) -> tuple[float, float] | None:
    """When the rate first goes up, and when that higher rate ends (a hold trace's knots)."""
    knots = list(zip(trace.times, trace.rates, strict=True))
    for i, ((_, before), (at, after)) in enumerate(pairwise(knots)):
        if after > before:
            end = knots[i + 2][0] if i + 2 < len(knots) else trace.duration_s
            return at, end
    return None


def time_integral(samples: Sequence[LoopSample], field: str, end_s: float) -> float:
    """∫ value dt over [0, end_s], each sample's value held until the next (None: skipped)."""
    points = [(s.at_s, getattr(s, field)) for s in samples if getattr(s, field) is not None]
    total = 0.0
    for (t, v), (t_next, _) in pairwise([*points, (end_s, None)]):
        a, b = max(0.0, t), min(end_s, t_next)
        if b > a:
            total += v * (b - a)
    return total


def reaction(samples: Sequence[LoopSample], rise_s: float, end_s: float) -> dict[str, Any]:
    """Seconds from ``rise_s`` to the first patch and to the new capacity ready."""
    before = [s for s in samples if s.at_s <= rise_s]
    start = before[-1] if before else (samples[0] if samples else None)
    out: dict[str, Any] = {"rise_s": rise_s, "to_first_patch_s": None, "to_capacity_s": None}
    if start is None:
        return out
    after = [s for s in samples if s.at_s > rise_s]
    patch_at = None
    for s in after:
        moved = start.patched is not None and s.patched is not None and s.patched > start.patched
        grew = start.replicas is not None and s.replicas is not None and s.replicas > start.replicas
        if moved or grew:
            patch_at = s.at_s
            break
    if patch_at is None:
        return out
    out["to_first_patch_s"] = round(patch_at - rise_s, 2)
    # The most asked for before the rise ends; a first patch after that end still counts.
    asked = max((s.replicas or 0) for s in after if s.at_s <= max(end_s, patch_at))
    out["new_replicas"] = asked
    for s in after:
        if s.ready is not None and s.ready >= asked > (start.ready or 0):
            out["to_capacity_s"] = round(s.at_s - rise_s, 2)
            break
    return out


def loop_figures(
    trace: Trace, rows: Sequence[SecondRow], samples: Sequence[LoopSample], slo_ms: float
) -> dict[str, Any]:
    """The run's headline figures (see the module's docstring)."""
    violations = sum(
        1 for r in rows if (r.p99_ms is not None and r.p99_ms > slo_ms) or (r.due > 0 and r.ok == 0)
    )
    end = trace.duration_s
    patches = [s.patched for s in samples if s.patched is not None]
    replicas = [s.replicas for s in samples if s.replicas is not None]
    changes = sum(1 for a, b in pairwise(replicas) if a != b)
    rise = first_rise(trace)
    due = sum(r.due for r in rows)
    return {
        "slo_ms": slo_ms,
        "slo_violation_s": violations,
        "rejected_429": sum(r.rejected for r in rows),
        "errors": sum(r.errors for r in rows),
        "due": due,
        "ok": sum(r.ok for r in rows),
        "replica_s": round(time_integral(samples, "replicas", end), 1),
        "ready_pod_s": round(time_integral(samples, "ready", end), 1),
        "scale_changes": int(patches[-1] - patches[0]) if len(patches) > 1 else changes,
        "replica_changes_seen": changes,
        "max_replicas": max(replicas, default=None),
        "reaction": None if rise is None else reaction(samples, *rise),
    }
