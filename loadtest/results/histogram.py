"""Latency histograms (HdrHistogram, microseconds): recording, merging across processes, summaries.

Every generator process records into its own histogram and sends it back encoded (the compact
HdrHistogram V2 blob); the parent decodes and adds them, which loses nothing: percentiles of the
merged histogram are those of all the requests together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "LatencySummary",
    "decode",
    "encode",
    "merge",
    "new_histogram",
    "record_ns",
]

LOWEST_US = 1
HIGHEST_US = 60_000_000  # 60 s; slower requests are recorded as 60 s
SIGNIFICANT_FIGURES = 3


def new_histogram() -> Any:
    """An empty latency histogram: 1 µs to 60 s, 3 significant figures."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def record_ns(hist: Any, elapsed_ns: int) -> None:
    """Record one latency measured in nanoseconds (perf_counter_ns), clamped to the range."""
    hist.record_value(min(max(elapsed_ns // 1000, LOWEST_US), HIGHEST_US))


def encode(hist: Any) -> bytes:
    """The histogram as a compressed, base64 HdrHistogram V2 blob (picklable, small)."""
    return bytes(hist.encode())


def decode(blob: bytes) -> Any:
    """A histogram from a blob that ``encode`` made."""
    hist = new_histogram()
    hist.decode_and_add(blob)
    return hist


def merge(blobs: Iterable[bytes]) -> Any:
    """One histogram holding every value of the encoded histograms ``blobs``."""
    hist = new_histogram()
    for blob in blobs:
        hist.decode_and_add(blob)
    return hist


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """The figures reports show, in microseconds; all zero for an empty histogram."""

    count: int
    mean_us: float
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int

    @classmethod
    def of(cls, hist: Any) -> LatencySummary:
        count = int(hist.get_total_count())
        if count == 0:
            return cls(0, 0.0, 0, 0, 0, 0, 0)
        pct = hist.get_percentile_to_value_dict([50.0, 90.0, 99.0, 99.9])
        return cls(
            count=count,
            mean_us=float(hist.get_mean_value()),
            p50_us=int(pct[50.0]),
            p90_us=int(pct[90.0]),
            p99_us=int(pct[99.0]),
            p999_us=int(pct[99.9]),
            max_us=int(hist.get_max_value()),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
