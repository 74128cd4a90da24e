"""Outlier detection as Envoy does it: pure, time passed in.

A pod that fails ``consecutive_failures`` times in a row is ejected for ``base_ejection_s``
times its ejection count (capped at ``max_ejection_s``), unless that would eject more than
``max_ejected_percent`` of the pods (at least one pod may always be ejected). When its time is
up it comes back on trial: one batch at a time, and a failure on trial ejects it again at
once, for longer. Each ``interval_s`` without an ejection lowers its count by one (Envoy's
decay). Only failures that are the pod's count: the caller never reports the gateway's own
rejections (a full queue, a request that expired in the queue, a bad request).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["OutlierDetector", "OutlierPolicy"]


@dataclass(frozen=True, slots=True)
class OutlierPolicy:
    """Envoy's ``consecutive_5xx`` detector; its defaults (5, 30 s, 300 s, 10 %, 10 s)."""

    consecutive_failures: int = 5  # failures in a row that eject a pod
    base_ejection_s: float = 30.0  # the first ejection; the n-th lasts n times as long
    max_ejection_s: float = 300.0  # the longest an ejection lasts
    max_ejected_percent: float = 10.0  # of the pods at once; one may always be ejected
    interval_s: float = 10.0  # a pod's ejection count decays by one per clean interval

    def allowed(self, hosts: int) -> int:
        """How many of ``hosts`` may be ejected at once: the percentage, but at least one."""
        return max(1, math.floor(hosts * self.max_ejected_percent / 100))


@dataclass(slots=True)
class _Host:
    consecutive: int = 0
    ejections: int = 0
    ejected_until: float | None = None
    trial: bool = False
    since: float = 0.0  # when the count last changed, for decay


class OutlierDetector:
    """Per-host failure streaks and ejections."""

    def __init__(self, policy: OutlierPolicy | None = None) -> None:
        self.policy = policy or OutlierPolicy()
        self._hosts: dict[str, _Host] = {}

    def success(self, host: str, now: float) -> None:
        h = self._hosts.get(host)
        if h is None or self._refresh(h, now):
            return  # a batch sent before the ejection, answering late, proves nothing
        self._decay(h, now)
        h.consecutive = 0
        h.trial = False
        if h.ejections == 0 and h.ejected_until is None:
            del self._hosts[host]

    def failure(self, host: str, now: float, hosts: int) -> bool:
        """Record a failure of ``host`` (one of ``hosts`` pods); True when it is ejected now."""
        h = self._hosts.setdefault(host, _Host(since=now))
        self._refresh(h, now)
        if h.ejected_until is not None:
            return False  # a batch sent before the ejection, failing late
        self._decay(h, now)
        h.consecutive += 1
        if not h.trial and h.consecutive < self.policy.consecutive_failures:
            return False
        if self.ejected(now) >= self.policy.allowed(hosts):
            return False
        h.ejections += 1
        p = self.policy
        h.ejected_until = now + min(
            p.base_ejection_s * h.ejections, max(p.base_ejection_s, p.max_ejection_s)
        )
        h.consecutive = 0
        h.trial = False
        h.since = now
        return True

    def is_ejected(self, host: str, now: float) -> bool:
        h = self._hosts.get(host)
        if h is None:
            return False
        self._refresh(h, now)
        return h.ejected_until is not None

    def on_trial(self, host: str, now: float) -> bool:
        """Back from an ejection and not yet proven: one batch at a time."""
        h = self._hosts.get(host)
        if h is None:
            return False
        self._refresh(h, now)
        return h.trial

    def ejected(self, now: float) -> int:
        return sum(1 for h in self._hosts.values() if self._refresh(h, now))

    def next_return(self) -> float:
        """When the next ejected host comes back (inf: none is ejected)."""
        times = [h.ejected_until for h in self._hosts.values() if h.ejected_until is not None]
        return min(times, default=math.inf)

    def ejection_count(self, host: str) -> int:
        h = self._hosts.get(host)
        return 0 if h is None else h.ejections

    def forget(self, host: str) -> None:
        """A host that left the set: its record goes with it."""
        self._hosts.pop(host, None)

    def _refresh(self, h: _Host, now: float) -> bool:
        """Return an ejected host whose time is up (on trial); True while still ejected."""
        if h.ejected_until is not None and now >= h.ejected_until:
            h.ejected_until = None
            h.trial = True
            h.since = now
        return h.ejected_until is not None

    def _decay(self, h: _Host, now: float) -> None:
        if h.ejections and h.ejected_until is None and not h.trial:
            steps = int((now - h.since) // self.policy.interval_s)
            if steps > 0:
                h.ejections = max(0, h.ejections - steps)
                h.since += steps * self.policy.interval_s
