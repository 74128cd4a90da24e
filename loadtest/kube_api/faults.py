"""Faults the API server double injects on request, as a real server or network shows them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass(slots=True)
class Faults:
    """Each count applies to that many of the next watch (or any) requests, then runs out."""

    expire_watches: int = 0  # answer with an ERROR event: Status 410 Expired, then close
    silent_watches: int = 0  # send the headers, then nothing ever (no bookmark, no close)
    cut_watches: int = 0  # send half an event, then drop the connection mid-chunk
    fail_requests: int = 0  # answer HTTP 503 with a Status body (any request)
    bookmark_interval_s: float | None = None  # send BOOKMARKs this often on every watch

    @staticmethod
    def take(count: int) -> tuple[bool, int]:
        """(whether this request gets the fault, the count left)."""
        return (True, count - 1) if count > 0 else (False, 0)
