"""What a load run measured: latencies (an encoded histogram), counts, errors, client CPU."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loadtest.results.histogram import LatencySummary, decode, encode, merge, new_histogram

__all__ = ["LoadResult"]


@dataclass(slots=True)
class LoadResult:
    """The measurement window of one run (or several runs merged).

    Only requests that completed inside the window count; ``sent`` includes warm-up and the
    requests still in flight when the window closed. ``histogram`` is an encoded HdrHistogram
    of the successful requests' latencies (µs), so results travel between processes.
    """

    histogram: bytes = field(default_factory=lambda: encode(new_histogram()))
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    window_s: float = 0.0
    sent: int = 0
    verified: int = 0
    client_cpu_s: float = 0.0
    error_sample: str = ""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Successful requests per second in the window."""
        return self.ok / self.window_s if self.window_s > 0 else 0.0

    def summary(self) -> LatencySummary:
        return LatencySummary.of(decode(self.histogram))

    @classmethod
    def combine(cls, results: Iterable[LoadResult], *, sequential: bool) -> LoadResult:
        """Merge results: of the same window (parallel processes) or of successive windows.

        Counts, errors and CPU add up either way; the window is the longest of parallel runs, or
        the sum of sequential ones, so ``throughput`` stays right.
        """
        items = list(results)
        errors: Counter[str] = Counter()
        for r in items:
            errors.update(r.errors)
        windows = [r.window_s for r in items]
        return cls(
            histogram=encode(merge(r.histogram for r in items)),
            ok=sum(r.ok for r in items),
            errors=dict(errors),
            window_s=(sum(windows) if sequential else max(windows, default=0.0)),
            sent=sum(r.sent for r in items),
            verified=sum(r.verified for r in items),
            client_cpu_s=sum(r.client_cpu_s for r in items),
            error_sample=next((r.error_sample for r in items if r.error_sample), ""),
        )

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values (without the histogram blob)."""
        return {
            "ok": self.ok,
            "errors": dict(self.errors),
            "window_s": round(self.window_s, 4),
            "throughput_rps": round(self.throughput, 1),
            "sent": self.sent,
            "verified": self.verified,
            "client_cpu_s": round(self.client_cpu_s, 4),
            "client_cpu_us_per_req": (
                round(self.client_cpu_s * 1e6 / self.ok, 1) if self.ok else None
            ),
            "error_sample": self.error_sample,
            "latency": self.summary().as_dict(),
        }
