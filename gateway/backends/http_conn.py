"""Keep-alive HTTP/1.1 connections to one pod: a pool, and one exchange on a connection.

An exchange writes a whole request and is told its whole answer by a callback, from the
connection's own callbacks (``ReplyReader`` reads the bytes): no task and no future per request
when an idle connection is at hand (``send_now``); ``exchange`` awaits one, connecting first
when none is idle. A connection carries one exchange at a time (HTTP/1.1 has no multiplexing);
idle ones are reused newest first. A request sent on a reused connection that the pod closed
before any byte of its answer (a keep-alive race) is sent again once, on another connection.
The pool also tells when the pod came back on a new connection after every connection was
lost (a restart), as ``PodClient.reconnected`` does for gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl as ssl_
from collections.abc import Callable, Sequence
from typing import cast

from gateway.backends.http_wire import HttpReply, HttpWireError, ReplyReader
from gateway.errors import Code, InferError

__all__ = ["ConnectionPool", "Exchange", "Replied"]

_MAX_IDLE = 16  # idle connections kept per pod; more are closed
Replied = Callable[[HttpReply | None, InferError | None], None]  # (answer, or why none)


class _Lost(Exception):
    """The connection went before the whole answer came; ``started``: part of it had."""

    def __init__(self, detail: str, started: bool) -> None:
        super().__init__(detail)
        self.started = started


class _Connection(asyncio.Protocol):
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.reader = ReplyReader()
        self.closing = False  # closed by this side (a timeout, a cancelled call, close())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, parts: Sequence[bytes], exchange: Exchange) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self.reader = ReplyReader()
        self.transport.writelines(parts)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        try:
            reply = self.reader.feed(data)
        except HttpWireError as exc:
            self.exchange = None
            self.close()
            exchange.ended(None, exc)
            return
        if reply is None:
            return
        self.exchange = None
        if reply.keep_alive and not self.reader.extra:
            self.pool.release(self)
        else:
            self.close()
        exchange.ended(reply, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self, by_peer=not self.closing)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            detail = str(exc) if exc else "the pod closed the connection"
            exchange.ended(None, _Lost(detail, self.reader.started))

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class Exchange:
    """One request in flight: ``replied`` is called once, with its answer or an InferError
    (UNAVAILABLE: no connection, or it was lost before the answer; DEADLINE_EXCEEDED: the time
    was up; INTERNAL: an answer that is not HTTP), unless it is cancelled first."""

    def __init__(
        self, pool: ConnectionPool, parts: Sequence[bytes], timeout_s: float, replied: Replied
    ) -> None:
        self._pool = pool
        self._parts = parts
        self._replied: Replied | None = replied
        self._conn: _Connection | None = None
        self._retried = False
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout_s
        self._timer = loop.call_at(self._deadline, self._expired)

    def send_on(self, conn: _Connection, reused: bool) -> None:
        if self._replied is None:  # ended (timed out, cancelled) while it connected
            self._pool.release(conn)
            return
        self._conn = conn
        self._retried = self._retried or not reused  # a new connection's loss is no race
        conn.send(self._parts, self)

    def ended(self, reply: HttpReply | None, exc: BaseException | None) -> None:
        """The connection's outcome: the answer, or why there is none."""
        self._conn = None
        if isinstance(exc, _Lost) and not exc.started and not self._retried:
            self._retried = True  # a kept-alive connection the pod had closed: once more
            self._pool.resend(self)
            return
        error = None if exc is None else self._pool.error_of(exc)
        self._finish(reply, error)

    def failed(self, error: InferError) -> None:
        self._finish(None, error)

    @property
    def remaining_s(self) -> float:
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def _expired(self) -> None:
        if self._conn is not None:
            self._conn.exchange = None
            self._conn.close()
            self._conn = None
        address = self._pool.address
        self._finish(None, InferError(Code.DEADLINE_EXCEEDED, f"pod {address}: Deadline Exceeded"))

    def _finish(self, reply: HttpReply | None, error: InferError | None) -> None:
        replied, self._replied = self._replied, None
        self._timer.cancel()
        if replied is not None:
            replied(reply, error)

    def cancel(self) -> None:
        """The caller left: the connection is closed (the pod sees it go); no answer is told."""
        self._replied = None
        self._timer.cancel()
        if self._conn is not None:
            self._conn.exchange = None
            self._conn.close()
            self._conn = None


class ConnectionPool:
    """The connections to one pod at ``host:port``; ``address`` names it in errors. With
    ``ssl`` each is TLS, the pod's certificate checked for ``server_hostname`` (else host)."""

    def __init__(
        self,
        address: str,
        *,
        ssl: ssl_.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a pod's HTTP address must be host:port, got {address!r}")
        self.address = address
        self._host, self._port = host.strip("[]"), int(port)
        self._ssl = ssl
        self._server_hostname = None if ssl is None else server_hostname or self._host
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._closed = False
        self._all_lost = False  # every connection was lost (by the pod's side) since one was made
        self._reconnect: asyncio.Event | None = None

    @property
    def connections(self) -> int:
        """Connections open now, idle or carrying an exchange."""
        return len(self._open)

    def send_now(
        self, parts: Sequence[bytes], timeout_s: float, replied: Replied
    ) -> Exchange | None:
        """Send one request (its bytes, ``parts``) at once on an idle connection; ``replied``
        gets its outcome within ``timeout_s``. None when no connection is idle."""
        if not self._idle:
            return None
        exchange = Exchange(self, parts, timeout_s, replied)
        exchange.send_on(self._idle.pop(), reused=True)
        return exchange

    async def exchange(
        self, parts: Sequence[bytes], timeout_s: float, connect_timeout_s: float | None = None
    ) -> HttpReply:
        """Send one request and return its answer (see ``Exchange``), connecting first (within
        ``connect_timeout_s``, itself within ``timeout_s``) when no connection is idle.
        Cancelled, the connection is closed, so the pod sees the caller leave."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[HttpReply] = loop.create_future()

        def replied(reply: HttpReply | None, error: InferError | None) -> None:
            if waiter.done():
                return
            if reply is not None:
                waiter.set_result(reply)
            else:
                waiter.set_exception(error or InferError(Code.INTERNAL, "no answer"))

        exchange = self.send_now(parts, timeout_s, replied)
        try:
            if exchange is None:
                exchange = Exchange(self, parts, timeout_s, replied)
                exchange.send_on(await self._connect(connect_timeout_s, timeout_s), reused=False)
            return await waiter
        except BaseException:
            if exchange is not None:
                exchange.cancel()
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: the error raised is the one that counts
            raise

    def resend(self, exchange: Exchange) -> None:
        """Send ``exchange`` again, on an idle connection or a new one."""
        if self._idle:
            exchange.send_on(self._idle.pop(), reused=True)
            return
        task = asyncio.get_running_loop().create_task(self._resend_anew(exchange))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _resend_anew(self, exchange: Exchange) -> None:
        try:
            conn = await self._connect(None, exchange.remaining_s)
        except InferError as exc:
            exchange.failed(exc)
            return
        exchange.send_on(conn, reused=False)

    def error_of(self, exc: BaseException) -> InferError:
        """The caller's error for a connection's failure (``lost``: it broke, reset or closed,
        with the request on it)."""
        if isinstance(exc, HttpWireError):
            return InferError(Code.INTERNAL, f"pod {self.address} sent a bad response: {exc}")
        return InferError(Code.UNAVAILABLE, f"pod {self.address}: {exc}", lost=True)

    async def _connect(self, connect_timeout_s: float | None, timeout_s: float) -> _Connection:
        if self._closed:
            raise InferError(Code.UNAVAILABLE, f"pod {self.address}: the client is closed")
        loop = asyncio.get_running_loop()
        timeout = timeout_s if connect_timeout_s is None else min(timeout_s, connect_timeout_s)
        try:
            connecting = loop.create_connection(
                lambda: _Connection(self),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._server_hostname,
            )
            _, conn = await asyncio.wait_for(connecting, timeout)
        except TimeoutError:
            detail = f"pod {self.address}: not connected within {timeout:.3f} s"
            raise InferError(Code.UNAVAILABLE, detail, unsent=True) from None
        except OSError as exc:
            detail = f"pod {self.address}: cannot connect: {exc}"
            raise InferError(Code.UNAVAILABLE, detail, unsent=True) from None
        if self._closed:
            conn.close()
            raise InferError(Code.UNAVAILABLE, f"pod {self.address}: the client is closed")
        self._open.add(conn)
        if self._all_lost:
            self._all_lost = False
            if self._reconnect is not None:
                self._reconnect.set()
        return conn

    def release(self, conn: _Connection) -> None:
        """An exchange ended and ``conn`` may carry the next one."""
        if self._closed or len(self._idle) >= _MAX_IDLE:
            conn.close()
        else:
            self._idle.append(conn)

    def forget(self, conn: _Connection, *, by_peer: bool) -> None:
        """``conn`` is gone; the pod closed it unless this side did."""
        self._open.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        if by_peer and not self._open:
            self._all_lost = True

    async def reconnected(self) -> None:
        """Return once a new connection is made after every connection was lost by the pod's
        side: it may have restarted (with another model)."""
        event = self._reconnect = asyncio.Event()
        await event.wait()

    async def close(self) -> None:
        self._closed = True
        for task in list(self._connecting):
            task.cancel()
        for conn in list(self._open):
            conn.close()
        self._idle.clear()
