"""Pod start-up time, learnt per model: from a scale-up patch to its new endpoints being ready.

Pure: every call takes ``now`` and nothing reads a clock or logs. The controller (the shell)
tells it of each scale-up patch it made (from n to m replicas) and, every tick, of the ready
endpoints the gateways report (the largest count any gateway sees: they all see the same pods).

- A sample is the time from the patch to the ready count reaching m.
- A patch superseded by another scale-up before that gives a *partial* sample if the ready
  count had reached at least n + 1: the time to the last rise of the ready count.
- A scale-down, or a leadership change (``cancel``), drops the pending patch: no sample.
- The estimate is the median of the last ``keep`` samples (robust to one slow or quick pod);
  the configured prior until a sample exists.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from autoscaler.spec import ScalingSpec

__all__ = ["DEFAULT_PRIOR_S", "StartupEstimator", "StartupSample"]

DEFAULT_PRIOR_S = ScalingSpec().startup_s  # the spec's prior, for a model given none


@dataclass(frozen=True, slots=True)
class StartupSample:
    """One measured start-up: a patch from ``from_n`` to ``to_n`` until ``ready`` were ready."""

    model: str
    seconds: float
    from_n: int
    to_n: int
    ready: int
    partial: bool = False


@dataclass(slots=True)
class _Pending:
    from_n: int
    to_n: int
    at: float
    rose_at: float | None = None  # when the ready count last rose above from_n
    ready: int = 0  # ... to this


class StartupEstimator:
    """Per model: the pending scale-up patch, the last samples, and the estimate."""

    def __init__(
        self,
        priors: Mapping[str, float] | None = None,
        *,
        default_prior_s: float = DEFAULT_PRIOR_S,
        keep: int = 5,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self._priors = dict(priors or {})
        self._default = default_prior_s
        self._keep = keep
        self._pending: dict[str, _Pending] = {}
        self._samples: dict[str, deque[float]] = {}

    def observe_patch(self, model: str, from_n: int, to_n: int, now: float) -> StartupSample | None:
        """A patch of the model's replicas from ``from_n`` to ``to_n`` at ``now``. A scale-up
        starts a measurement (a partial sample of the one it supersedes, if that one made
        progress, is returned); a scale-down drops the pending one."""
        previous = self._pending.pop(model, None)
        if to_n <= from_n:
            return None
        sample = None
        if previous is not None and previous.rose_at is not None:
            sample = self._take(model, previous, previous.rose_at, previous.ready, partial=True)
        self._pending[model] = _Pending(from_n, to_n, now)
        return sample

    def observe_ready(self, model: str, ready: int, now: float) -> StartupSample | None:
        """The ready endpoints the gateways report at ``now``; the sample when it completes."""
        pending = self._pending.get(model)
        if pending is None:
            return None
        if ready >= pending.to_n:
            del self._pending[model]
            return self._take(model, pending, now, ready, partial=False)
        if ready > max(pending.from_n, pending.ready):
            pending.rose_at, pending.ready = now, ready
        return None

    def cancel(self, model: str | None = None) -> None:
        """Drop the pending measurement of ``model`` (of every model when None)."""
        if model is None:
            self._pending.clear()
        else:
            self._pending.pop(model, None)

    def pending_since(self, model: str) -> float | None:
        """When the model's scale-up still waiting for its pods was patched; None if none."""
        pending = self._pending.get(model)
        return pending.at if pending is not None else None

    def samples(self, model: str) -> tuple[float, ...]:
        return tuple(self._samples.get(model, ()))

    def estimate(self, model: str) -> float:
        """The median of the last samples; the model's prior until one exists."""
        samples = self._samples.get(model)
        if not samples:
            return self._priors.get(model, self._default)
        return statistics.median(samples)

    def _take(
        self, model: str, pending: _Pending, at: float, ready: int, *, partial: bool
    ) -> StartupSample:
        seconds = max(0.0, at - pending.at)
        kept = self._samples.setdefault(model, deque(maxlen=self._keep))
        kept.append(seconds)
        return StartupSample(model, seconds, pending.from_n, pending.to_n, ready, partial)
