"""An open-loop run cut into seconds by each request's *scheduled* send time. Pure.

Second ``k`` holds the requests due in ``[opens + k, opens + k + 1)`` s: how many were due, sent
and answered, their errors by kind, and HDR histograms (µs) of their latencies and of the
generator's lag. A request due in second k counts in second k whenever its answer comes, so a
backlog shows as latency in the second that caused it, not as a dip in the seconds after.
Generator processes cut their own requests; ``merge_seconds`` adds the processes together.

While a run goes on, each process also reports what happened in the last wall-clock second
(``Progress``), cheaply, for a live display; those figures are not the report's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from loadtest.results.histogram import LatencySummary, decode, encode, merge, new_histogram
from loadtest.results.open_loop_result import UNFINISHED, histogram_of_ns

__all__ = [
    "Progress",
    "SecondFigures",
    "bucket_seconds",
    "combine_seconds",
    "merge_seconds",
    "within",
]

_NS = 1_000_000_000


def within(histogram: bytes, limit_us: float) -> int:
    """How many values of an encoded histogram are at most ``limit_us`` (to its precision)."""
    hist = decode(histogram)
    return sum(
        int(item.count_at_value_iterated_to)
        for item in hist.get_recorded_iterator()
        if item.value_iterated_to <= limit_us
    )


@dataclass(slots=True)
class SecondFigures:
    """Requests due in one second of the window (``second`` counts from the window's start).

    ``errors`` includes overflows (due but not sent) and ``unfinished`` (never answered), so
    ``ok + error_count == due``.
    """

    second: int
    due: int = 0
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    histogram: bytes = field(default_factory=lambda: encode(new_histogram()))
    lag_histogram: bytes = field(default_factory=lambda: encode(new_histogram()))

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> LatencySummary:
        return LatencySummary.of(decode(self.histogram))

    def lag(self) -> LatencySummary:
        return LatencySummary.of(decode(self.lag_histogram))

    def ok_within(self, limit_us: float) -> int:
        """Answered requests whose latency was at most ``limit_us``."""
        return within(self.histogram, limit_us) if self.ok else 0


def _histograms(index: np.ndarray, values_ns: np.ndarray, seconds: int) -> list[bytes]:
    """One encoded µs histogram per second of the values whose second is ``index``."""
    order = np.argsort(index, kind="stable")
    index, values_ns = index[order], values_ns[order]
    bounds = np.searchsorted(index, np.arange(seconds + 1))
    return [histogram_of_ns(values_ns[bounds[s] : bounds[s + 1]]) for s in range(seconds)]


def _second_of(opens_ns: int, due_ns: Sequence[int], seconds: int) -> np.ndarray:
    index = (np.asarray(due_ns, dtype=np.int64) - opens_ns) // _NS
    return np.clip(index, 0, seconds - 1)


def bucket_seconds(
    opens_ns: int,
    seconds: int,
    *,
    due_ns: Sequence[int],
    ok_due_ns: Sequence[int],
    latencies_ns: Sequence[int],
    sent_due_ns: Sequence[int],
    lags_ns: Sequence[int],
    errors: Sequence[tuple[int, str]],
) -> list[SecondFigures]:
    """Cut one process's counted requests into ``seconds`` seconds by due time.

    ``ok_due_ns``/``latencies_ns`` pair each answered request's due time with its latency,
    ``sent_due_ns``/``lags_ns`` each sent one's with its lag; ``errors`` is (due time, kind).
    Requests due but neither answered nor failed count as ``unfinished``.
    """
    if seconds < 1:
        return []
    due = np.bincount(_second_of(opens_ns, due_ns, seconds), minlength=seconds)
    ok_index = _second_of(opens_ns, ok_due_ns, seconds)
    sent_index = _second_of(opens_ns, sent_due_ns, seconds)
    ok = np.bincount(ok_index, minlength=seconds)
    sent = np.bincount(sent_index, minlength=seconds)
    latency = _histograms(ok_index, np.asarray(latencies_ns, dtype=np.int64), seconds)
    lag = _histograms(sent_index, np.asarray(lags_ns, dtype=np.int64), seconds)
    failed: list[Counter[str]] = [Counter() for _ in range(seconds)]
    if errors:
        error_index = _second_of(opens_ns, [t for t, _ in errors], seconds)
        for s, (_, kind) in zip(error_index.tolist(), errors, strict=True):
            failed[s][kind] += 1
    out = []
    for s in range(seconds):
        lost = int(due[s]) - int(ok[s]) - sum(failed[s].values())
        if lost > 0:
            failed[s][UNFINISHED] += lost
        out.append(
            SecondFigures(
                s, int(due[s]), int(sent[s]), int(ok[s]), dict(failed[s]), latency[s], lag[s]
            )
        )
    return out


def combine_seconds(items: Iterable[SecondFigures], second: int) -> SecondFigures:
    """One ``SecondFigures`` holding every request of ``items`` (processes or a phase)."""
    items = list(items)
    errors: Counter[str] = Counter()
    for item in items:
        errors.update(item.errors)
    return SecondFigures(
        second=second,
        due=sum(i.due for i in items),
        sent=sum(i.sent for i in items),
        ok=sum(i.ok for i in items),
        errors=dict(errors),
        histogram=encode(merge(i.histogram for i in items)),
        lag_histogram=encode(merge(i.lag_histogram for i in items)),
    )


def merge_seconds(per_process: Iterable[Sequence[SecondFigures]]) -> list[SecondFigures]:
    """The seconds of processes that ran the same window side by side, added second by second."""
    by_second: dict[int, list[SecondFigures]] = {}
    for seconds in per_process:
        for item in seconds:
            by_second.setdefault(item.second, []).append(item)
    return [combine_seconds(by_second[s], s) for s in sorted(by_second)]


@dataclass(frozen=True, slots=True)
class Progress:
    """What one generator process saw in one wall-clock second of the window (live display).

    ``latencies_us`` are those of the answers that came in that second, whenever due.
    """

    process: int
    second: int
    due: int
    sent: int
    ok: int
    errors: int
    latencies_us: np.ndarray
