"""A/B comparison: the same load against two targets, alternating A, B, A, B …, and B/A ratios.

Alternating rounds in one run, rather than one long run per target, spreads whatever else the
machine is doing over both sides alike. Each side's rounds are merged (``Leg``): latencies into
one histogram, counts and the CPU seconds of its processes under test (read over each
measurement window) added up. The load is closed-loop (``ClosedLoopConfig``) or open-loop
(``OpenLoopConfig``; both sides of a round get the same arrival schedule). The figures and their
ratios are pure functions of the legs, so they are tested without a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtest.clients.base import ClientSpec
from loadtest.generators.closed_loop import ClosedLoopConfig
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.generators.workers import WindowProbe
from loadtest.probes.cpu import CpuSource, CpuWindow
from loadtest.results.load_result import LoadResult
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.results.report import fmt_cpu_us, fmt_rate, fmt_ratio, fmt_us
from loadtest.stack.spread import run_closed_loop_spread, run_open_loop_spread, spread_specs

__all__ = [
    "AbResult",
    "Leg",
    "LoadPlan",
    "Side",
    "alternation",
    "figures",
    "ratio",
    "ratios",
    "run_ab",
    "run_load",
]

LoadPlan = ClosedLoopConfig | OpenLoopConfig
TOTAL_CPU = "cpu_us_per_req"  # the figure: CPU-µs per request of all processes under test


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class Leg:
    """One side's runs (all rounds merged) and the CPU seconds each process used in them.

    ``invalid`` holds why an open-loop round cannot be trusted (its generator fell behind).
    """

    result: LoadResult = field(default_factory=LoadResult)
    cpu_s: dict[str, float] = field(default_factory=dict)
    rounds: int = 0
    invalid: list[str] = field(default_factory=list)

    def add(self, result: LoadResult, cpu_s: Mapping[str, float]) -> None:
        runs = [self.result, result] if self.rounds else [result]
        self.result = LoadResult.combine(runs, sequential=True)
        self.rounds += 1
        for name, seconds in cpu_s.items():
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + seconds
        if isinstance(result, OpenLoopResult) and result.invalid:
            self.invalid.append(result.invalid)

    def cpu_us_per_request(self, name: str | None = None) -> float | None:
        """CPU-µs per successful request of process ``name``, or of all of them (None)."""
        if self.result.ok == 0 or not self.cpu_s or (name is not None and name not in self.cpu_s):
            return None
        seconds = sum(self.cpu_s.values()) if name is None else self.cpu_s[name]
        return seconds * 1e6 / self.result.ok

    def as_dict(self) -> dict[str, Any]:
        cpu = {f"{k}_cpu_us_per_req": _round(self.cpu_us_per_request(k)) for k in self.cpu_s}
        return {
            **self.result.as_dict(),
            "rounds": self.rounds,
            "cpu_s": self.cpu_s,
            **cpu,
            TOTAL_CPU: _round(self.cpu_us_per_request()),
            "invalid_rounds": list(self.invalid),
        }


def figures(leg: Leg) -> dict[str, float | None]:
    """The figures an A/B compares; per-process CPU as ``<name>_cpu_us_per_req``."""
    r = leg.result
    s = r.summary()
    doc: dict[str, float | None] = {
        "throughput_rps": r.throughput,
        "p50_us": s.p50_us if s.count else None,
        "p99_us": s.p99_us if s.count else None,
        "p999_us": s.p999_us if s.count else None,
        "errors": r.error_count,
        TOTAL_CPU: leg.cpu_us_per_request(),
    }
    for name in sorted(leg.cpu_s):
        doc[f"{name}_cpu_us_per_req"] = leg.cpu_us_per_request(name)
    doc["generator_cpu_us_per_req"] = r.client_cpu_s * 1e6 / r.ok if r.ok else None
    return doc


def ratio(a: float | None, b: float | None) -> float | None:
    """B / A, or None when either is unknown or A is zero."""
    if a is None or b is None or a == 0:
        return None
    return b / a


def ratios(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> dict[str, float | None]:
    """B/A for every figure either side has (None where one side lacks it)."""
    keys = list(a) + [k for k in b if k not in a]
    return {k: ratio(a.get(k), b.get(k)) for k in keys}


def alternation(rounds: int, sides: int = 2) -> list[tuple[int, int]]:
    """The runs in order, as (round, side): A, B, A, B … for ``rounds`` rounds."""
    if rounds < 1 or sides < 1:
        raise ValueError("rounds and sides must be >= 1")
    return [(r, s) for r in range(rounds) for s in range(sides)]


_ROW_LABELS = {
    "throughput_rps": ("req/s", fmt_rate),
    "p50_us": ("p50", fmt_us),
    "p99_us": ("p99", fmt_us),
    "p999_us": ("p99.9", fmt_us),
    "errors": ("errors", fmt_rate),
    TOTAL_CPU: ("CPU-µs/req, all under test", fmt_cpu_us),
    "generator_cpu_us_per_req": ("generator CPU-µs/req", fmt_cpu_us),
}


def _row_order(key: str) -> int:
    """Table order (a stable sort): the common figures, then per-process CPU, the generator's."""
    if key == "generator_cpu_us_per_req":
        return 2
    return 0 if key in _ROW_LABELS else 1


def _row_label(key: str) -> tuple[str, Callable[[float | None], str]]:
    if key in _ROW_LABELS:
        return _ROW_LABELS[key]
    return (f"CPU-µs/req, {key.removesuffix('_cpu_us_per_req')}", fmt_cpu_us)


@dataclass(frozen=True, slots=True)
class Side:
    """One target of an A/B: what to send where, and the processes under test (for CPU).

    ``more_targets``: further addresses (gateway replicas) the load is spread over, beside
    ``spec``'s own; then the load's generator processes must be a multiple of their count.
    """

    label: str
    spec: ClientSpec
    watched: Mapping[str, CpuSource] = field(default_factory=dict)
    more_targets: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.spec.target, *self.more_targets)

    def specs(self) -> tuple[ClientSpec, ...]:
        """The client spec of each target."""
        return spread_specs(self.spec, self.targets)


@dataclass(slots=True)
class AbResult:
    """Both sides' merged legs, their figures and the B/A ratios."""

    a: Side
    b: Side
    legs: tuple[Leg, Leg] = field(default_factory=lambda: (Leg(), Leg()))

    def figures(self) -> tuple[dict[str, float | None], dict[str, float | None]]:
        return figures(self.legs[0]), figures(self.legs[1])

    def ratios(self) -> dict[str, float | None]:
        return ratios(*self.figures())

    def rows(self) -> list[list[str]]:
        """The side-by-side table: figure, A, B, B/A."""
        fa, fb = self.figures()
        rows = []
        for key, r in sorted(self.ratios().items(), key=lambda kv: _row_order(kv[0])):
            label, fmt = _row_label(key)
            rows.append([label, fmt(fa.get(key)), fmt(fb.get(key)), fmt_ratio(r)])
        if any(leg.invalid for leg in self.legs):
            rows.append(["generator kept schedule", *(_kept(leg) for leg in self.legs), ""])
        return rows

    def as_dict(self) -> dict[str, Any]:
        def side(s: Side, leg: Leg) -> dict[str, Any]:
            about: dict[str, Any] = {"label": s.label, "protocol": s.spec.kind}
            about["target"] = s.spec.target
            if s.more_targets:
                about["targets"] = list(s.targets)
            return {**about, **leg.as_dict()}

        fa, fb = self.figures()
        return {
            "a": side(self.a, self.legs[0]),
            "b": side(self.b, self.legs[1]),
            "figures": {"a": _rounded(fa), "b": _rounded(fb)},
            "ratios_b_over_a": _rounded(self.ratios()),
        }


def _kept(leg: Leg) -> str:
    return "yes" if not leg.invalid else f"no ({len(leg.invalid)}/{leg.rounds} rounds)"


def _rounded(doc: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: _round(v) for k, v in doc.items()}


def run_load(
    specs: Sequence[ClientSpec], load: LoadPlan, probe: WindowProbe | None = None
) -> LoadResult:
    """One run of ``load`` (closed- or open-loop), spread over ``specs``' targets."""
    if isinstance(load, OpenLoopConfig):
        return run_open_loop_spread(specs, load, probe)
    return run_closed_loop_spread(specs, load, probe)


def run_ab(
    a: Side,
    b: Side,
    load: LoadPlan,
    rounds: int,
    *,
    tag: str = "",
    log: Callable[[str], None] = lambda line: print(line, flush=True),
) -> AbResult:
    """Run ``load`` against A and B alternately for ``rounds`` rounds; merge each side's runs.

    In open loop, round r uses seed ``load.seed + r`` on both sides: the same arrivals.
    """
    ab = AbResult(a, b)
    sides: Sequence[Side] = (a, b)
    width = max(len(a.label), len(b.label))
    for round_no, index in alternation(rounds):
        side = sides[index]
        plan = load
        if isinstance(load, OpenLoopConfig):
            plan = dataclasses.replace(load, seed=load.seed + round_no)
        probe = CpuWindow(side.watched)
        log(f"round {round_no + 1}: {tag}{side.label:<{width}} ...")
        result = run_load(side.specs(), plan, probe)
        ab.legs[index].add(result, probe.seconds)
        if result.error_count:
            log(f"  errors {result.errors}: {result.error_sample}")
    return ab
