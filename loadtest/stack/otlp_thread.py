"""Loopback OTLP sinks served from a thread of their own, for a bench that has no event loop.

``OtlpSink`` serves on the event loop that starts it; a synchronous bench (``loadtest ab``
waits on its generator processes) starts its sinks here instead: one thread, one event loop,
any number of sinks on it. A sink's ``received`` count may be read from any thread, also after
``stop``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from loadtest.stack.otlp_sink import OtlpSink

__all__ = ["SinkThread"]

T = TypeVar("T")

KEEP = 1000  # spans kept per sink: a bench counts them, it does not read them


class SinkThread:
    """OTLP sinks on an event loop in a daemon thread; a context manager (stops them all)."""

    def __init__(self, *, keep: int = KEEP, timeout_s: float = 10.0) -> None:
        self._keep = keep
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="otlp-sinks")
        self._thread.daemon = True
        self._sinks: list[OtlpSink] = []

    def __enter__(self) -> SinkThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the thread (and its loop)."""
        self._thread.start()

    def sink(self) -> OtlpSink:
        """One more sink, serving on a free loopback port by the time it is returned."""
        sink = self._call(self._started())
        self._sinks.append(sink)
        return sink

    def stop(self) -> None:
        """Stop every sink, then the loop and the thread; the counts stay readable."""
        if self._thread.is_alive():
            try:
                for sink in self._sinks:
                    self._call(sink.stop())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(self._timeout_s)
        if not self._thread.is_alive():
            self._loop.close()

    async def _started(self) -> OtlpSink:
        sink = OtlpSink(keep=self._keep)  # made on the loop that serves it
        await sink.start()
        return sink

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout_s)
