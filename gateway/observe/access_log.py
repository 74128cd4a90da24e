"""The access log: one line per inference request that is sampled, failed or slow.

``AccessSampler`` is the pure decision (a random share of the answered requests, every failed
or slow one, all within a token bucket of lines per second, clock and randomness injected);
``AccessLog`` writes the chosen lines on the ``gateway.access`` logger with their fields, and
counts those the bucket had no room for. Never a tensor: ids, sizes, places and times only;
what the caller wrote (the model's name, the body's id, the error) cut short, so a line stays
small whatever a request holds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from gateway.errors import Code
from gateway.observe.request import MAX_ID_CHARS, RequestInfo
from gateway.observe.settings import AccessLogSettings

__all__ = ["ACCESS_LOGGER", "AccessLog", "AccessSampler"]

ACCESS_LOGGER = "gateway.access"
log = logging.getLogger(ACCESS_LOGGER)


class AccessSampler:
    """Which requests get a line: ``sample`` of the answered fast ones, every failed one (with
    ``errors``) and every one of ``slow_ms`` or more; at most ``max_lines_per_s`` on average
    (bursts of ``burst_lines``)."""

    def __init__(
        self,
        settings: AccessLogSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self.settings = settings
        self._tokens = float(settings.burst_lines)
        self._at = clock()

    def update(self, settings: AccessLogSettings) -> None:
        self.settings = settings
        self._tokens = min(self._tokens, float(settings.burst_lines))

    def wanted(self, failed: bool, latency_s: float) -> bool:
        """Whether this request deserves a line, before the rate limit."""
        s = self.settings
        if failed and s.errors:
            return True
        if s.slow_ms is not None and latency_s * 1000 >= s.slow_ms:
            return True
        return s.sample > 0 and (s.sample >= 1 or self._rng.random() < s.sample)

    def take(self) -> bool:
        """Room for one more line now (the token bucket)."""
        now = self._clock()
        s = self.settings
        refill = (now - self._at) * s.max_lines_per_s
        self._tokens = min(float(s.burst_lines), self._tokens + refill)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class AccessLog:
    """Writes the sampler's lines; ``dropped`` counts the lines the rate limit held back."""

    def __init__(self, sampler: AccessSampler, dropped: Callable[[], None]) -> None:
        self.sampler = sampler
        self._dropped = dropped

    def record(
        self, info: RequestInfo, code: Code | None, latency_s: float, message: str = ""
    ) -> None:
        """The request ended (``code`` None: answered): a line if it is chosen."""
        if not self.sampler.wanted(code is not None, latency_s):
            return
        if not self.sampler.take():
            self._dropped()
            return
        log.info("access", extra=fields(info, code, latency_s, message))


def fields(info: RequestInfo, code: Code | None, latency_s: float, message: str) -> dict[str, Any]:
    """An access line's fields (the JSON log's keys)."""
    doc: dict[str, Any] = {
        "request_id": info.request_id,
        "model": info.model[:MAX_ID_CHARS],
        "protocol": info.protocol,
        "status": "OK" if code is None else code.name,
        "rows": info.rows,
        "queue_ms": round(info.queue_ns / 1e6, 3),
        "batch_rows": info.batch_rows,
        "pod": info.pod,
        "tries": info.tries,
        "latency_ms": round(latency_s * 1000, 3),
    }
    if info.tenant is not None:
        doc["tenant"] = info.tenant.name
    if info.protocol == "http":
        doc["http_status"] = 200 if code is None else code.http_status
    if info.body_id and info.body_id != info.request_id:
        doc["id"] = info.body_id[:MAX_ID_CHARS]
    if info.trace is not None:
        doc["trace_id"] = info.trace.trace_id
    if message:
        doc["error"] = message[:500]
    return doc
