"""Faults the API server double injects on request, as a real server or network shows them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Faults", "Injection"]


@dataclass(frozen=True, slots=True)
class Injection:
    """What the next request of ``method`` on ``plural`` (and ``subresource``) meets: first
    ``before`` runs (another writer racing this request), then, if ``code`` is set, the request
    is answered with that error and a Status body, with ``headers`` (e.g. ``Retry-After``)."""

    method: str
    plural: str
    subresource: str | None = None
    code: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    before: Callable[[], None] | None = None

    def matches(self, method: str, plural: str, subresource: str | None) -> bool:
        return (self.method, self.plural, self.subresource) == (method, plural, subresource)


@dataclass(slots=True)
class Faults:
    """Each count applies to that many of the next watch (or any) requests, then runs out."""

    expire_watches: int = 0  # answer with an ERROR event: Status 410 Expired, then close
    silent_watches: int = 0  # send the headers, then nothing ever (no bookmark, no close)
    cut_watches: int = 0  # send half an event, then drop the connection mid-chunk
    fail_requests: int = 0  # answer HTTP 503 with a Status body (any request)
    bookmark_interval_s: float | None = None  # send BOOKMARKs this often on every watch
    injections: list[Injection] = field(default_factory=list)  # one request each, in order

    @staticmethod
    def take(count: int) -> tuple[bool, int]:
        """(whether this request gets the fault, the count left)."""
        return (True, count - 1) if count > 0 else (False, 0)

    def fail(
        self,
        method: str,
        plural: str,
        code: int,
        *,
        subresource: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``method`` request on ``plural`` with HTTP ``code``; calls queue up,
        one request each."""
        self.injections.append(Injection(method, plural, subresource, code, dict(headers or {})))

    def race(
        self,
        method: str,
        plural: str,
        write: Callable[[], None],
        *,
        subresource: str | None = None,
    ) -> None:
        """Run ``write`` just before the next ``method`` request on ``plural`` is served, as a
        writer that got there first (its resourceVersion then makes that request stale)."""
        self.injections.append(Injection(method, plural, subresource, before=write))

    def take_injection(self, method: str, plural: str, subresource: str | None) -> Injection | None:
        """The first injection queued for this request, removed; None when there is none."""
        for i, injection in enumerate(self.injections):
            if injection.matches(method, plural, subresource):
                return self.injections.pop(i)
        return None
