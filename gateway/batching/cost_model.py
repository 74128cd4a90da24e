"""The fitted batch cost of a model's pods, ``time(n) = F + c·n``, learnt from observed batches.

Batches of one size (a pod kept full under overload) tell the time at that size but not how it
splits into F and c: a least-squares fit over them alone lets noise pick the slope (F 1.4 ms,
c 0.485 ms/row were fitted for a pod of 8 ms + 0.25 ms/row after mostly 32-row batches). So
the model keeps two things apart:

- the *window*: exponentially weighted moments of (rows, seconds), ``decay`` per batch. It
  gives the level (the time at the sizes seen lately) and, as far as its sizes vary, a slope
  with its precision (the spread of sizes over the residual noise);
- the *anchor*: the shape of the line, what every spread of sizes seen so far taught. Each
  time the window has turned over, its slope is folded into the anchor by precision, and the
  anchor forgets as much as the window brought (it holds ``anchor_memory`` times the best
  window's precision). Nothing decays with time or with batches of one size: a week of
  them cannot wear it out, a few odd sizes barely move it, and a new shape seen with a
  spread of sizes replaces the old one within a few dozen windows.

The fit takes the window's slope and the anchor's (scaled to the window's level) by their
precisions, through the window's mean: a pod that turns 2x slower at all sizes is followed
within a few windows even when only one size runs (F and c both scale). Before two sizes were
ever seen the slope is unidentified (``slope_identified`` is false): c is ``prior_per_row_s``
(0: it is all in F) and F takes the rest. F and c are never negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BatchCost", "CostModel"]

_NOISE_PRIOR = 0.05  # a prior noise, as a fraction of the mean time, worth two batches
_NOISE_FLOOR_S = 1e-9  # no window times batches better than to the nanosecond


@dataclass(frozen=True, slots=True)
class BatchCost:
    """A fit: fixed seconds per batch and seconds per row."""

    fixed_s: float
    per_row_s: float
    low_s: float = 0.0  # the fit's low quantile residual (<= 0 when batches vary)

    def seconds(self, rows: float) -> float:
        return self.fixed_s + self.per_row_s * rows

    def quick_seconds(self, rows: int) -> float:
        """A batch's time at the quick end of what was seen (its 10th percentile): what to
        plan a send by, since sending late idles a device and sending early costs little."""
        return max(0.0, self.seconds(rows) + self.low_s)

    def throughput(self, rows: int, slots: int) -> float:
        """Rows per second ``slots`` parallel slots serve with batches of ``rows`` (infinite for
        a pod too fast to time)."""
        seconds = self.seconds(rows)
        return slots * rows / seconds if seconds > 0 else math.inf


@dataclass(frozen=True, slots=True)
class _Anchor:
    """The line's shape as learnt, and how sure: ``strength`` is the precision of c (1 / its
    variance) times the line's own time at one row squared, so that it holds at any level."""

    line: BatchCost
    strength: float


class CostModel:
    """The batch cost fit: a window for the level, an anchor for the slope (see the module).

    Beside the mean, the 10th percentile of the residuals is tracked (stochastic quantile
    steps of ``quantile_step`` times the batch's fitted time): a batch's time only grows by
    noise (a stalled answer, a late arrival at the pod), so its low end is the device's.
    ``observe`` and ``fit`` are O(1); the fit is kept until the next batch.
    """

    LOW_QUANTILE = 0.1

    def __init__(
        self,
        *,
        decay: float = 0.98,
        min_batches: int = 5,
        quantile_step: float = 0.02,
        prior_per_row_s: float = 0.0,
        anchor_memory: float = 8.0,
    ) -> None:
        self._decay = decay
        self._min = min_batches
        self._step = quantile_step
        self._prior_c = max(0.0, prior_per_row_s)
        self._memory = anchor_memory
        self._turnover = 2.0 / (1.0 - decay) if decay < 1 else math.inf  # batches per fold
        self._seen = 0
        # The window: weight, means and centred co-moments (a decayed, weighted Welford).
        self._w = self._mn = self._mt = self._cnn = self._cnt = self._ctt = 0.0
        self._anchor: _Anchor | None = None
        self._best = 0.0  # the strength of the most precise window folded
        self._since = 0  # batches since the last fold
        self._low = 0.0
        self._line_cache: BatchCost | None = None  # the line until the next observe()
        self._fit: BatchCost | None = None

    @property
    def batches_seen(self) -> int:
        return self._seen

    @property
    def slope_identified(self) -> bool:
        """Whether batches of more than one size were seen; until then c is the prior's."""
        return self._anchor is not None

    def observe(self, rows: int, seconds: float) -> None:
        before = self._line()
        if before is not None:
            fitted = before.seconds(rows)
            below = seconds - fitted < self._low
            self._low += self._step * fitted * (self.LOW_QUANTILE - below)
        self._add(float(rows), seconds)
        self._seen += 1
        self._line_cache = self._fit = None
        self._fold()

    def fit(self) -> BatchCost | None:
        """The current fit, or None before ``min_batches`` batches were seen."""
        if self._fit is None:
            line = self._line()
            if line is not None:
                self._fit = BatchCost(line.fixed_s, line.per_row_s, self._low)
        return self._fit

    def _add(self, n: float, t: float) -> None:
        d = self._decay
        self._w = self._w * d + 1.0
        dn, dt = n - self._mn, t - self._mt
        self._mn += dn / self._w
        self._mt += dt / self._w
        self._cnn = self._cnn * d + dn * (n - self._mn)
        self._cnt = self._cnt * d + dn * (t - self._mt)
        self._ctt = self._ctt * d + dt * (t - self._mt)

    def _spread(self) -> bool:
        """Whether the window's sizes vary at all (beyond rounding)."""
        return self._cnn > 1e-12 * self._w * max(1.0, self._mn * self._mn)

    def _noise(self) -> float:
        """The window's residual variance about its own line (with a weak prior)."""
        sse = self._ctt - (self._cnt * self._cnt / self._cnn if self._spread() else 0.0)
        prior = 2.0 * (_NOISE_PRIOR * self._mt) ** 2
        return max((max(0.0, sse) + prior) / self._w, _NOISE_FLOOR_S**2)

    def _fold(self) -> None:
        """Fold the window's slope into the anchor once the window has turned over (at once
        for the first spread of sizes), the anchor forgetting what the window brings."""
        self._since += 1
        if not self._spread() or (self._anchor is not None and self._since < self._turnover):
            return
        window = self._cnn / self._noise()
        scale = _scale(_through(self._mn, self._mt, self._slope(window)[0])) ** 2
        self._best = max(self._best, window * scale)
        memory = self._memory * self._best / scale
        slope, precision = self._slope(window, math.exp(-window / memory))
        self._anchor = _Anchor(_through(self._mn, self._mt, slope), precision * scale)
        self._since = 0

    def _line(self) -> BatchCost | None:
        if self._seen < self._min:
            return None
        if self._line_cache is None:
            window = self._cnn / self._noise() if self._spread() else 0.0
            self._line_cache = _through(self._mn, self._mt, self._slope(window)[0])
        return self._line_cache

    def _slope(self, window: float, kept: float = 1.0) -> tuple[float, float]:
        """The slopes of the window (of precision ``window``) and of the anchor (at the
        window's level, ``kept`` of its precision) by precision, and that precision; the
        prior's, of no precision, before any spread of sizes."""
        window_c = self._cnt / self._noise() if window else 0.0
        anchor = self._anchor
        if anchor is None:
            return (window_c / window, window) if window else (self._prior_c, 0.0)
        at_mean = anchor.line.seconds(self._mn)
        level = self._mt / at_mean if at_mean > 0 else 1.0
        held = kept * anchor.strength / _scale(anchor.line, level) ** 2
        precision = window + held
        return (window_c + held * anchor.line.per_row_s * level) / precision, precision


def _scale(line: BatchCost, level: float = 1.0) -> float:
    """A line's time at one row (scaled by ``level``): what its precision is relative to."""
    return max(level * (line.fixed_s + line.per_row_s), _NOISE_FLOOR_S)


def _through(mean_n: float, mean_t: float, slope: float) -> BatchCost:
    """The line of ``slope`` through the mean point, F and c never negative."""
    slope = max(0.0, slope)
    fixed = mean_t - slope * mean_n
    if fixed < 0:  # the line through the origin and the mean point
        return BatchCost(0.0, mean_t / mean_n if mean_n > 0 else 0.0)
    return BatchCost(fixed, max(0.0, slope))
