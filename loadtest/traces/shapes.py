"""Load traces: an offered rate (requests/s) that changes over time. Pure.

A trace is a list of knots (time s, rate) joined either by straight lines (``linear``) or by
holding each rate until the next knot (``hold``); before the first knot the rate is the first
rate, after the last the last. Step, spike and square wave are ``hold`` traces, a ramp is a
``linear`` one, and a trace file gives the knots itself (``timestamp_s,rate`` lines). The rate
function feeds the generator as a shape (``rate / peak``) that thins Poisson arrivals at the
peak (``generators.arrivals``), and its exact integral gives the number of arrivals expected in
any window, which the report shows as the offered load.

A trace also names its phases (before/after a step, the spike, the low and high halves of a
square wave, quarters of a ramp or a file), which the summary table reports one by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "INTERPOLATIONS",
    "TRACE_KINDS",
    "Phase",
    "Trace",
    "TraceFileError",
    "build_trace",
    "diurnal",
    "parse_trace_file",
    "ramp",
    "read_trace_file",
    "spike",
    "square",
    "step",
]

Interpolation = Literal["linear", "hold"]
INTERPOLATIONS: tuple[Interpolation, ...] = ("linear", "hold")
TRACE_KINDS = ("step", "ramp", "spike", "square", "file", "diurnal")
DIURNAL_FILE = "diurnal.csv"  # in loadtest/traces/files: a day compressed into 120 s


class TraceFileError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Phase:
    """A named stretch of a trace, ``[start_s, end_s)``; several stretches may share a name."""

    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Trace:
    """Rates at knot times, joined by ``interpolation``, over ``[0, duration_s)``."""

    name: str
    times: tuple[float, ...]
    rates: tuple[float, ...]
    duration_s: float
    interpolation: Interpolation = "linear"
    phases: tuple[Phase, ...] = ()

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.rates):
            raise ValueError("a trace needs as many rates as times, at least one")
        if any(not math.isfinite(v) for v in (*self.times, *self.rates, self.duration_s)):
            raise ValueError("trace times and rates must be finite")
        if self.times[0] < 0 or any(b <= a for a, b in pairwise(self.times)):
            raise ValueError("trace times must be >= 0 and strictly increasing")
        if min(self.rates) < 0 or not max(self.rates) > 0:
            raise ValueError("trace rates must be >= 0, and one > 0")
        if not self.duration_s > 0:
            raise ValueError(f"trace duration must be > 0, got {self.duration_s}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}")

    @property
    def peak(self) -> float:
        """The highest rate (requests/s) anywhere in the trace."""
        return max(self.rates)

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        """The rate (requests/s) at each time ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)
        times, rates = np.asarray(self.times), np.asarray(self.rates)
        if self.interpolation == "linear":
            return np.interp(t, times, rates)
        index = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
        return rates[index]

    def relative(self, t: np.ndarray) -> np.ndarray:
        """The rate at ``t`` as a fraction of the peak: the generator's shape."""
        return self.rate(t) / self.peak

    def expected(self, start_s: float, end_s: float) -> float:
        """Arrivals expected in ``[start_s, end_s)``: the integral of the rate, exactly."""
        if end_s <= start_s:
            return 0.0
        edges = np.concatenate([[-np.inf], self.times, [np.inf]])
        lo = np.clip(edges[:-1], start_s, end_s)
        hi = np.clip(edges[1:], start_s, end_s)
        width = hi - lo
        if self.interpolation == "linear":  # a straight line between knots: the trapezoid
            return float(np.sum(width * (self.rate(lo) + self.rate(hi)) / 2))
        return float(np.sum(width * self.rate(lo)))

    def mean_rate(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        """The mean rate over ``[start_s, end_s)`` (default: the whole trace)."""
        end = self.duration_s if end_s is None else end_s
        return self.expected(start_s, end) / (end - start_s) if end > start_s else 0.0

    def scaled(self, *, duration_s: float | None = None, peak: float | None = None) -> Trace:
        """The same trace stretched to ``duration_s`` and/or with its rates scaled to ``peak``."""
        k_t = 1.0 if duration_s is None else duration_s / self.duration_s
        k_r = 1.0 if peak is None else peak / self.peak
        return replace(
            self,
            times=tuple(t * k_t for t in self.times),
            rates=tuple(r * k_r for r in self.rates),
            duration_s=self.duration_s * k_t,
            phases=tuple(Phase(p.name, p.start_s * k_t, p.end_s * k_t) for p in self.phases),
        )

    def describe(self) -> dict[str, object]:
        """The trace as plain JSON values."""
        return {
            "name": self.name,
            "interpolation": self.interpolation,
            "duration_s": self.duration_s,
            "peak_rps": self.peak,
            "mean_rps": round(self.mean_rate(), 3),
            "points": [[t, r] for t, r in zip(self.times, self.rates, strict=True)],
            "phases": [[p.name, p.start_s, p.end_s] for p in self.phases],
        }


def _quarters(duration_s: float) -> tuple[Phase, ...]:
    cuts = [duration_s * i / 4 for i in range(5)]
    return tuple(Phase(f"{a:g}-{b:g} s", a, b) for a, b in pairwise(cuts))


def step(base: float, peak: float, duration_s: float, at_s: float | None = None) -> Trace:
    """``base`` until ``at_s`` (default: half-way), then ``peak``."""
    at = duration_s / 2 if at_s is None else at_s
    if not 0 < at < duration_s:
        raise ValueError(f"the step must fall inside the trace: 0 < {at} < {duration_s}")
    phases = (Phase("before", 0.0, at), Phase("after", at, duration_s))
    return Trace("step", (0.0, at), (base, peak), duration_s, "hold", phases)


def ramp(base: float, peak: float, duration_s: float) -> Trace:
    """From ``base`` at the start, in a straight line, to ``peak`` at the end."""
    return Trace(
        "ramp", (0.0, duration_s), (base, peak), duration_s, "linear", _quarters(duration_s)
    )


def spike(
    base: float,
    peak: float,
    duration_s: float,
    at_s: float | None = None,
    width_s: float = 2.0,
) -> Trace:
    """``base``, with ``peak`` for ``width_s`` from ``at_s`` (default: half-way)."""
    at = duration_s / 2 if at_s is None else at_s
    end = at + width_s
    if not (at > 0 and width_s > 0 and end < duration_s):
        raise ValueError(f"the spike must fall inside the trace: 0 < {at} < {end} < {duration_s}")
    phases = (Phase("before", 0.0, at), Phase("spike", at, end), Phase("after", end, duration_s))
    return Trace("spike", (0.0, at, end), (base, peak, base), duration_s, "hold", phases)


def square(base: float, peak: float, duration_s: float, period_s: float = 10.0) -> Trace:
    """``base`` for the first half of each ``period_s``, ``peak`` for the second half."""
    if not 0 < period_s <= duration_s:
        raise ValueError(f"the period must be > 0 and fit the trace, got {period_s}")
    half = period_s / 2
    edges = [i * half for i in range(math.ceil(duration_s / half))]
    rates = tuple(base if i % 2 == 0 else peak for i in range(len(edges)))
    phases = tuple(
        Phase("low" if i % 2 == 0 else "high", t, min(t + half, duration_s))
        for i, t in enumerate(edges)
    )
    return Trace("square", tuple(edges), rates, duration_s, "hold", phases)


def parse_trace_file(
    text: str,
    *,
    name: str = "file",
    source: str = "<trace>",
    interpolation: Interpolation = "linear",
) -> Trace:
    """A trace from ``timestamp_s,rate`` lines.

    Blank lines and ``#`` comments are skipped, and a first line ``timestamp_s,rate`` (a header)
    too. Timestamps are seconds from the start, strictly increasing; rates requests/s, >= 0.
    The trace ends at the last timestamp. Errors name ``source`` and the line.
    """
    times: list[float] = []
    rates: list[float] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if not times and [f.lower() for f in fields] == ["timestamp_s", "rate"]:
            continue
        where = f"{source}:{number}"
        if len(fields) != 2:
            raise TraceFileError(f"{where}: expected 'timestamp_s,rate', got {raw.strip()!r}")
        try:
            t, r = float(fields[0]), float(fields[1])
        except ValueError:
            raise TraceFileError(f"{where}: not a number in {raw.strip()!r}") from None
        if not (math.isfinite(t) and math.isfinite(r)):
            raise TraceFileError(f"{where}: timestamp and rate must be finite")
        if t < 0 or r < 0:
            raise TraceFileError(f"{where}: timestamp and rate must be >= 0")
        if times and t <= times[-1]:
            raise TraceFileError(
                f"{where}: timestamp {t:g} is not after the previous one ({times[-1]:g})"
            )
        times.append(t)
        rates.append(r)
    if len(times) < 2:
        raise TraceFileError(f"{source}: a trace needs at least two 'timestamp_s,rate' lines")
    if not max(rates) > 0:
        raise TraceFileError(f"{source}: every rate is 0")
    return Trace(name, tuple(times), tuple(rates), times[-1], interpolation, _quarters(times[-1]))


def read_trace_file(path: Path, interpolation: Interpolation = "linear") -> Trace:
    """``parse_trace_file`` of a file; the trace is named after it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TraceFileError(f"{path}: {exc.strerror or exc}") from None
    return parse_trace_file(text, name=path.stem, source=str(path), interpolation=interpolation)


def diurnal(interpolation: Interpolation = "linear") -> Trace:
    """The packaged example: a day of traffic compressed into 120 s (5 s an hour)."""
    text = resources.files("loadtest.traces").joinpath("files", DIURNAL_FILE).read_text()
    trace = parse_trace_file(text, name="diurnal", source=DIURNAL_FILE, interpolation=interpolation)
    quarter = trace.duration_s / 4
    names = ("night", "morning", "afternoon", "evening")
    phases = tuple(Phase(n, i * quarter, (i + 1) * quarter) for i, n in enumerate(names))
    return replace(trace, phases=phases)


def build_trace(
    kind: str,
    *,
    base: float | None = None,
    peak: float | None = None,
    duration_s: float | None = None,
    at_s: float | None = None,
    width_s: float = 2.0,
    period_s: float = 10.0,
    path: Path | None = None,
    interpolation: Interpolation = "linear",
) -> Trace:
    """The trace of ``kind`` (one of ``TRACE_KINDS``) with its parameters.

    Shapes default to 200 → 600 requests/s over 30 s. A file (``diurnal`` or ``file`` without a
    path is the packaged example) keeps its own rates and length unless ``peak`` (rates scaled
    so the highest is ``peak``) or ``duration_s`` (time stretched) is given.
    """
    if kind in ("file", "diurnal"):
        trace = (
            read_trace_file(path, interpolation)
            if kind == "file" and path is not None
            else diurnal(interpolation)
        )
        return trace.scaled(duration_s=duration_s, peak=peak)
    b = 200.0 if base is None else base
    p = 600.0 if peak is None else peak
    d = 30.0 if duration_s is None else duration_s
    if kind == "step":
        return step(b, p, d, at_s)
    if kind == "ramp":
        return ramp(b, p, d)
    if kind == "spike":
        return spike(b, p, d, at_s, width_s)
    if kind == "square":
        return square(b, p, d, period_s)
    raise ValueError(f"unknown trace {kind!r}; expected one of {TRACE_KINDS}")
