"""A lean HTTP/1.1 server for the v2 REST API: httptools parses, a route table answers.

On a 2-core machine this server costs 40 to 50 CPU-µs per request, about 0.6 times what
aiohttp's low-level ``web.Server`` costs with the same trivial handler (and a quarter of its
``web.Application``; ``python -m loadtest.benches.http_servers``). It does what the REST
clients of Triton need — keep-alive, pipelined requests answered in order, chunked request
bodies, ``Expect: 100-continue``, HEAD for every GET — and holds against hostile ones: limits
on the head (431), the body (413, at once), chunk lines, read-ahead and unread answers;
deadlines for a head, a body, an idle connection and a peer that stops reading; a connection
cap (503); malformed requests answered 400 in their turn, then the connection closed. A client
that disconnects cancels the handler of its request (an inference still queued leaves the
queue). ``stop`` drains: idle connections close at once, the others after the answers they are
owed, the last one carrying ``Connection: close``.

The parts: ``http_conn`` (a connection: flow control, order, closing), ``http_reader`` (the
parser's callbacks), ``http_framing`` (where a request's parts end), ``http_heads`` (what a head
says of its body), ``http_limits`` (limits, deadlines), ``http_encode`` (response heads),
``http_router`` (routes), ``http_types`` (requests, responses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import cast

from gateway.config import ServerSettings
from gateway.frontends.http_conn import Connection
from gateway.frontends.http_encode import encode_head
from gateway.frontends.http_limits import HttpLimits, limits_from
from gateway.frontends.http_router import Router
from gateway.frontends.http_types import ErrorHandler, Request, Response, json_response
from gateway.memory_budget import MemoryBudget

__all__ = [
    "HttpLimits",
    "HttpServer",
    "Request",
    "Response",
    "Router",
    "json_response",
    "start_http_server",
]

log = logging.getLogger(__name__)


class _Refused(asyncio.Protocol):
    """A connection over the cap (or come as the server stops). Envoy closes such a connection
    at once (global_downstream_max_connections); uvicorn answers 503 once it has read the head
    (--limit-concurrency). This answers 503 at once, reading nothing, and closes without
    lingering, so that a flood of connections holds no descriptor for long."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        busy = json_response({"error": self._reason}, 503)
        cast(asyncio.Transport, transport).write(encode_head(busy, close=True) + busy.body)
        transport.close()


class HttpServer:
    """Serves ``router`` with ``on_error`` turning a handler's exception into a response."""

    def __init__(
        self,
        router: Router,
        on_error: ErrorHandler,
        limits: HttpLimits | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.router = router
        self.on_error = on_error
        self.limits = limits or HttpLimits()
        self.budget = budget  # the gateway's memory budget: every request's bytes count
        self.now = time.monotonic
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._all_gone = asyncio.Event()
        self._stopping = False
        self._tls = False

    def _protocol(self) -> asyncio.Protocol:
        """A new connection, counted in; past the cap (or once stopping), one that is refused.
        Over TLS it is counted once its handshake is done (``adopt``): asyncio never tells a
        protocol whose handshake failed that its connection went."""
        if self._stopping:
            return _Refused("the server is stopping")
        if len(self.connections) >= self.limits.max_connections:
            return _Refused("the server has too many connections")
        conn = Connection(self)
        if not self._tls:
            self.adopt(conn)
        return conn

    def adopt(self, conn: Connection) -> None:
        """``conn`` is connected (its handshake done, over TLS): count it in."""
        self.connections.add(conn)
        self._all_gone.clear()
        if self._stopping:
            conn.drain()

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self._all_gone.set()

    def sweep(self) -> None:
        """Apply every connection's deadlines now."""
        now = self.now()
        for conn in list(self.connections):
            conn.check(now)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_s)
            self.sweep()

    async def answer(self, request: Request) -> Response:
        found = self.router.resolve(request.method, request.path)
        if isinstance(found, int):
            what = "no such path" if found == 404 else f"method {request.method} not allowed"
            return json_response({"error": f"{what}: {request.path}"}, found)
        handler, request.params = found
        try:
            return await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is answered, never a dropped connection
            response = self.on_error(request, exc)
            if response is None:
                log.exception("unhandled error answering %s %s", request.method, request.path)
                return json_response({"error": f"internal error: {exc}"}, 500)
            return response

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen on host:port (0: a free port), over TLS with ``tls`` (a handshake gets the
        head timeout); return the port."""
        loop = asyncio.get_running_loop()
        self._tls = tls is not None
        handshake_s = self.limits.head_timeout_s if tls is not None else None
        self._server = await loop.create_server(
            self._protocol,
            host,
            port,
            reuse_address=True,
            ssl=tls,
            ssl_handshake_timeout=handshake_s,
        )
        self._sweeper = loop.create_task(self._sweep())
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop listening and drain: idle connections close at once, the others once they have
        their answers (up to ``grace_s``); then whatever is left is dropped."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.drain()
        if self.connections:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), grace_s)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.close(abort=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def start_http_server(
    router: Router,
    on_error: ErrorHandler,
    host: str,
    port: int,
    settings: ServerSettings,
    budget: MemoryBudget | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[HttpServer, int]:
    server = HttpServer(router, on_error, limits_from(settings), budget)
    return server, await server.start(host, port, tls)
