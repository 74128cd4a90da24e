"""The fitted batch cost of a model's pods, ``time(n) = F + c·n``, learnt from observed batches."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BatchCost", "CostModel"]


@dataclass(frozen=True, slots=True)
class BatchCost:
    """A fit: fixed seconds per batch and seconds per row."""

    fixed_s: float
    per_row_s: float
    low_s: float = 0.0  # the fit's low quantile residual (<= 0 when batches vary)

    def seconds(self, rows: int) -> float:
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


class CostModel:
    """Exponentially weighted least squares over (rows, seconds) of recent batches.

    Older batches weigh less (``decay`` per batch), so the fit follows a pod fleet that changes.
    With batches of one size only, the split between F and c is unknown: c is taken as 0.
    Beside the mean, the 10th percentile of the residuals is tracked (stochastic quantile
    steps of ``quantile_step`` times the batch's fitted time): a batch's time only grows by
    noise (a stalled answer, a late arrival at the pod), so its low end is the device's.
    """

    LOW_QUANTILE = 0.1

    def __init__(
        self, *, decay: float = 0.98, min_batches: int = 5, quantile_step: float = 0.02
    ) -> None:
        self._decay = decay
        self._min = min_batches
        self._step = quantile_step
        self._seen = 0
        self._w = self._n = self._t = self._nn = self._nt = 0.0
        self._low = 0.0
        self._fit: BatchCost | None = None  # fit() until the next observe()

    @property
    def batches_seen(self) -> int:
        return self._seen

    def observe(self, rows: int, seconds: float) -> None:
        before = self._line()
        if before is not None:
            fitted = before.seconds(rows)
            below = seconds - fitted < self._low
            self._low += self._step * fitted * (self.LOW_QUANTILE - below)
        d = self._decay
        self._w = self._w * d + 1.0
        self._n = self._n * d + rows
        self._t = self._t * d + seconds
        self._nn = self._nn * d + rows * rows
        self._nt = self._nt * d + rows * seconds
        self._seen += 1
        self._fit = None

    def fit(self) -> BatchCost | None:
        """The current fit, or None before ``min_batches`` batches were seen."""
        if self._fit is None:
            line = self._line()
            if line is not None:
                self._fit = BatchCost(line.fixed_s, line.per_row_s, self._low)
        return self._fit

    def _line(self) -> BatchCost | None:
        if self._seen < self._min:
            return None
        mean_n, mean_t = self._n / self._w, self._t / self._w
        var_n = self._nn / self._w - mean_n * mean_n
        per_row = 0.0
        if var_n > 1e-9 * max(1.0, mean_n * mean_n):
            per_row = max(0.0, (self._nt / self._w - mean_n * mean_t) / var_n)
        fixed = mean_t - per_row * mean_n
        if fixed < 0:  # a line through the origin fits better than a negative intercept
            fixed, per_row = 0.0, self._nt / self._nn if self._nn else 0.0
        return BatchCost(fixed, per_row)
