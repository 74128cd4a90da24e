"""One HTTP/1.1 client connection: parse with httptools, answer strictly in request order.

Flow control both ways: reading pauses while the requests parsed ahead of the one being
answered pass the read-ahead budget, or while the peer leaves its answers unread (the transport
called ``pause_writing``); a peer that takes none of them for ``write_stall_s`` is aborted (the
sweeper, ``check``), which frees what the connection holds — ``close()`` would wait for the
peer. Every answer, an error included, takes its turn after the answers owed before it; after
an error that ends the stream (malformed, over a limit, late) nothing more is parsed, the
answers owed are written, then the error, then the connection closes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from gateway.frontends.http_encode import CONTINUE, encode_head
from gateway.frontends.http_framing import Framer, FramingError
from gateway.frontends.http_heads import Refusal
from gateway.frontends.http_limits import Action, Phase, due, track_stall
from gateway.frontends.http_reader import RequestReader
from gateway.frontends.http_types import Request, Response, json_response
from gateway.memory_budget import Lease, budget_full

if TYPE_CHECKING:
    from gateway.frontends.http_server import HttpServer

__all__ = ["Connection"]

_REQUEST_COST = 1024  # bytes each parsed request counts against read-ahead beyond its own
_IDLE, _HEAD, _BODY, _BUSY, _CLOSING = Phase.IDLE, Phase.HEAD, Phase.BODY, Phase.BUSY, Phase.CLOSING


class Connection(asyncio.Protocol):
    """One client connection; ``check(now)`` applies its deadlines (the server's sweeper)."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = limits = server.limits
        self._transport: asyncio.Transport | None = None
        self._framer = Framer(limits.max_head, limits.max_chunk_line)
        self._parser = RequestReader(self, self._framer, limits.max_body).parser
        # request, cost, 1.0 keep-alive, and its bytes in the gateway's memory budget
        self._pending: deque[tuple[Request, int, bool, Lease | None]] = deque()
        self._lease: Lease | None = None  # of the request being read
        self._task: asyncio.Task[None] | None = None
        self._answering = False
        self._fatal: Response | None = None  # the error that ends the stream, once owed
        self.parsing = True  # False once no further request will be read
        self._closing = False
        self._draining = False
        self.reading = True  # False while the connection holds reading back
        self._writable = True
        self._drained = asyncio.Event()
        self._drained.set()
        self.held_bytes = 0  # of requests received, not yet handed to a handler (+ cost)
        self._message_bytes = 0
        self._unparsed = b""  # received past the read-ahead budget, parsed once within it
        self._written = 0
        self._last_drained = 0
        self.stalled_since: float | None = None
        self._now = server.now
        self.continue_owed = False  # a 100 Continue, once nothing is owed before it
        self.phase = _IDLE
        self.phase_since = self._now()

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.phase_since = self._now()

    @property
    def unsent_bytes(self) -> int:
        """Bytes of answers written and not yet taken by the socket."""
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop: no subclass
        transport.set_write_buffer_limits(high=self._limits.write_buffer)
        self.phase_since = self._now()  # idle from now, a TLS handshake done
        self._server.adopt(self)  # counted in already, unless over TLS

    def data_received(self, data: bytes) -> None:
        if not self.parsing:
            return  # after the last request: what the client still sends is dropped
        self._feed(data)
        if not (self.reading and self._may_read()) or self._unparsed:
            self._update_reading()

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` part by part; what comes past the read-ahead budget waits, unparsed,
        for reading to resume (one read of many small requests is not parsed all at once)."""
        framer, parser = self._framer, self._parser
        start, size = 0, len(data)
        view: memoryview | None = None
        try:
            while start < size and self.parsing:
                if (self._answering or not self._writable) and not self._may_read():
                    self._unparsed = data[start:] if start else data
                    return
                # the common case, one request (or more of its body), goes to the parser whole
                end = size if not start and framer.whole(data) else framer.split(data, start)
                n = end - start
                self._message_bytes += n
                self.held_bytes += n
                if n == size:
                    parser.feed_data(data)
                else:
                    view = view or memoryview(data)
                    parser.feed_data(view[start:end])
                start = end
        except FramingError as exc:
            self._fail(exc.status, exc.message)
        except httptools.HttpParserUpgrade:  # answered as if without Upgrade, then closed
            self.parsing = False
            if not self._answering:
                self._finish()
        except httptools.HttpParserError as exc:
            if self.parsing:  # else a callback already ended the stream
                self._fail(400, f"malformed HTTP request: {exc}")

    def pause_writing(self) -> None:
        self._writable = False
        self._drained.clear()
        self._update_reading()

    def resume_writing(self) -> None:
        self._writable = True
        self._drained.set()
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_leases()
        self.parsing = False
        self._closing = True
        self._drained.set()
        self._server.forget(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the client left: its handler (and queued inference) go too

    # -- what the reader tells ---------------------------------------------------------------

    def message_began(self) -> None:
        self.phase = _HEAD
        self.phase_since = self._now()

    def head_read(self, expects_continue: bool, length: int) -> None:
        self.phase = _BODY
        self.phase_since = self._now()
        budget = self._server.budget
        if budget is not None:  # the declared body must fit before a byte of it is read
            self._lease = budget.try_acquire(max(0, length))
            if self._lease is None:
                self._fail(429, budget_full(budget, length))
                return
        if expects_continue:
            self.continue_owed = True
            self._send_continue()

    def body_grew(self, n: int) -> bool:
        """A chunk of a chunked body arrived: it must fit the memory budget too."""
        if self._lease is None or self._lease.grow(n):
            return True
        budget = self._server.budget
        assert budget is not None
        self._fail(429, budget_full(budget, self._lease.bytes + n))
        return False

    def request_read(self, request: Request, http10_keep_alive: bool) -> None:
        cost = self._message_bytes + _REQUEST_COST
        self._pending.append((request, cost, http10_keep_alive, self._lease))
        self._lease = None
        self.held_bytes += _REQUEST_COST
        self._message_bytes = 0
        self.continue_owed = False
        self.phase = _BUSY
        if not request.keep_alive or self._draining:
            self.parsing = False  # RFC 9112 §9.6: nothing after a request that closes is read
        if not self._answering:
            self._answering = True
            self._task = asyncio.get_running_loop().create_task(self._serve())

    def refuse(self, refusal: Refusal) -> None:
        self._fail(refusal.status, refusal.message)

    # -- answering ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        pending, answer = self._pending, self._server.answer
        try:
            while pending:
                if not self._writable:
                    await self._drained.wait()  # check() aborts a peer that stops reading
                    if self._closing:
                        return
                request, cost, http10, lease = pending.popleft()
                self.held_bytes -= cost
                if not self.reading:
                    self._update_reading()
                try:
                    response = await answer(request)
                finally:
                    if lease is not None:
                        lease.release()  # answered (or its caller left): its bytes go
                if self._closing:
                    return
                self._respond(request, response, http10)
                if self._closing:
                    return
        finally:
            self._answering = False
        if self._fatal is not None:
            self._write_last(self._fatal)
        elif not self.parsing:
            self._finish()
        else:
            if self.continue_owed:
                self._send_continue()
            if self.phase is _BUSY:
                self.phase = _IDLE
                self.phase_since = self._now()
            if not self.reading:
                self._update_reading()  # within the budget again: what waits unparsed is parsed

    def _respond(self, request: Request, response: Response, http10: bool) -> None:
        last = not self.parsing and not self._pending and self._fatal is None
        head = encode_head(response, last, http10)
        body = response.body if request.method != "HEAD" else b""
        if len(body) < 65536:
            self._write(head + body)
        else:  # not copied into one buffer
            self._write(head)
            self._write(body)
        if last:
            self.parsing = False
            self._finish()

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._closing:
            return
        transport.write(data)
        self._written += len(data)

    def _write_last(self, response: Response) -> None:
        self._write(encode_head(response, close=True) + response.body)
        self._finish()

    def _send_continue(self) -> None:
        """``100 Continue`` for the request being received, once nothing is owed before it."""
        if self.continue_owed and not self._pending and not self._answering:
            self.continue_owed = False
            self._write(CONTINUE)

    def _release_leases(self) -> None:
        """Give back the memory budget of everything this connection still holds."""
        for _, _, _, lease in self._pending:
            if lease is not None:
                lease.release()
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def _fail(self, status: int, message: str) -> None:
        """End the stream: nothing more is parsed; the answers owed, then this, then close."""
        if self._lease is not None:  # the request being read is refused: its bytes go
            self._lease.release()
            self._lease = None
        if self._fatal is not None or self._closing:
            return
        self.parsing = False
        self._fatal = json_response({"error": message}, status)
        self._enter(Phase.BUSY)
        self._update_reading()
        if not self._answering:
            self._write_last(self._fatal)

    def _finish(self) -> None:
        """Close after the last answer: half-close, then drop what the client still sends
        until it closes too (so a request it is still sending cannot reset the connection
        before it reads the answer), ``linger_s`` at most."""
        if self._closing:
            return
        self._closing = True
        self._enter(Phase.CLOSING)
        transport = self._transport
        if transport is None:
            return
        if not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:  # the peer has gone already
            transport.abort()
            return
        self._set_reading(True)

    def close(self, abort: bool = False) -> None:
        """Close now, with whatever is buffered still to be sent (``check`` aborts a stall);
        ``abort``: drop the connection and everything it buffers."""
        self.parsing = False
        self._closing = True
        self._enter(Phase.CLOSING)
        if self._transport is None:
            return
        if abort:
            self._transport.abort()
        else:
            self._transport.close()

    def drain(self) -> None:
        """The server is stopping: close now if idle, else after the answers owed (the last
        carries ``Connection: close``); a request being received may still complete."""
        self._draining = True
        if self.phase is Phase.IDLE:
            self.close()
        elif self.phase is Phase.BUSY:  # answering, nothing more being received: read no more
            self.parsing = False
            self._update_reading()

    # -- flow control and deadlines -----------------------------------------------------------

    def _may_read(self) -> bool:
        """Whether more requests may be read: the peer takes its answers, and those read ahead
        of the one being answered are within the budget."""
        limits = self._limits
        return self._writable and (
            not self._answering
            or (
                len(self._pending) < limits.read_ahead_requests
                and self.held_bytes <= limits.read_ahead_bytes
            )
        )

    def _update_reading(self) -> None:
        if self._unparsed and self.parsing and self._may_read():
            data, self._unparsed = self._unparsed, b""
            self._feed(data)
        self._set_reading(
            self._closing or (self.parsing and not self._unparsed and self._may_read())
        )

    def _set_reading(self, on: bool) -> None:
        transport = self._transport
        if on == self.reading or transport is None or (transport.is_closing() and not on):
            return
        self.reading = on
        if on:
            transport.resume_reading()
            if self.phase in (Phase.HEAD, Phase.BODY):
                self.phase_since = self._server.now()  # its time runs while we read only
        else:
            transport.pause_reading()

    def check(self, now: float) -> None:
        """Apply the deadlines at ``now``."""
        if self._transport is None:
            return
        buffered = self._transport.get_write_buffer_size()
        drained, last = self._written - buffered, self._last_drained
        self._last_drained = drained
        self.stalled_since = track_stall(buffered, drained, last, self.stalled_since, now)
        action = due(
            self.phase,
            self.phase_since,
            reading=self.reading,
            buffered=buffered,
            stalled_since=self.stalled_since,
            now=now,
            limits=self._limits,
        )
        if action is Action.ABORT or action is Action.CLOSE:
            self.close(abort=action is Action.ABORT)
        elif action is Action.HEAD_TIMEOUT:
            self._fail(408, f"request head not received in {self._limits.head_timeout_s:g} s")
        elif action is Action.BODY_TIMEOUT:
            self._fail(408, f"request body not received in {self._limits.body_timeout_s:g} s")
