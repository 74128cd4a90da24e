"""A lean HTTP/1.1 server for the v2 REST API: httptools parses, a route table answers.

aiohttp's request and response machinery costs about 190 CPU-µs per request on a 2-core cloud
machine, as much as the gateway's own work on an inference; this server costs about 60, like
uvicorn's httptools protocol. It does what the REST clients of Triton need: keep-alive, pipelined
requests answered in order, chunked request bodies, ``Expect: 100-continue``, HEAD for every GET,
a body limit (413), malformed requests answered 400 and the connection closed. A client that
disconnects cancels the handler of its request (an inference still queued leaves the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote

import httptools
import orjson

__all__ = ["HttpServer", "Request", "Response", "Router", "json_response", "start_http_server"]

log = logging.getLogger(__name__)

_PIPELINE_LIMIT = 16  # requests parsed ahead of the one being answered before reading pauses
_HEAD_LIMIT = 64 * 1024  # bytes of request line and headers (aiohttp allows 8 KiB a line)


@dataclass(slots=True)
class Request:
    """One parsed request: ``headers`` by lower-case name, ``params`` from the route pattern
    (set once routed); ``too_large`` is the body's size when it was over the limit (and
    dropped), else 0."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool = True
    too_large: int = 0
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, BaseException], Response | None]


def json_response(
    doc: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, orjson.dumps(doc), "application/json", headers)


class Router:
    """Routes by method and path; ``{name}`` in a pattern matches one path segment."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Handler]] = {}
        self._dynamic: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        methods = {method: handler}
        if method == "GET":
            methods["HEAD"] = handler
        if "{" not in pattern:
            self._static.setdefault(pattern, {}).update(methods)
            return
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        for known, handlers in self._dynamic:
            if known.pattern == regex.pattern:
                handlers.update(methods)
                return
        self._dynamic.append((regex, methods))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | int:
        """The handler and path parameters, or 404 / 405."""
        handlers = self._static.get(path)
        params: dict[str, str] = {}
        if handlers is None:
            for regex, candidates in self._dynamic:
                match = regex.match(path)
                if match is not None:
                    handlers = candidates
                    params = {k: unquote(v) for k, v in match.groupdict().items()}
                    break
        if handlers is None:
            return 404
        handler = handlers.get(method)
        return 405 if handler is None else (handler, params)


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n".encode()


_STATUS_LINES = {s.value: _status_line(s.value) for s in HTTPStatus}


class _Clock:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self._line


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and answers them in order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._closing = False
        self.last_active = server.now()
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_size = 0
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def idle(self) -> bool:
        """Nothing parsed, pending or being answered."""
        return not self._pending and (self._task is None or self._task.done())

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.last_active = self._server.now()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            if self._head_size > _HEAD_LIMIT:
                self._fail(431, "request line and headers are over 64 KiB")
            else:
                self._fail(400, f"malformed HTTP request: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the client left: its handler (and queued inference) go too

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def _count_head(self, n: int) -> None:
        self._head_size += n
        if self._head_size > _HEAD_LIMIT:  # stops the parser: answered 431 and closed
            raise httptools.HttpParserError("request line and headers over 64 KiB")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self._headers.get("expect", "").lower() != "100-continue" or self._closing:
            return
        length = self._headers.get("content-length", "")
        declared = int(length) if length.isdigit() else 0
        if declared > self._server.max_body:  # refuse before the body is sent, then close
            self._fail(
                413, f"request body is too large: {declared} bytes > {self._server.max_body}"
            )
        elif self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self._server.max_body:
            self._chunks.append(body)
        else:
            self._chunks.clear()

    def on_message_complete(self) -> None:
        if self._closing:
            return
        too_large = self._size if self._size > self._server.max_body else 0
        self._pending.append(
            Request(
                self._parser.get_method().decode("ascii", "replace"),
                unquote(self._url.decode("latin-1").partition("?")[0]),
                self._headers,
                b"".join(self._chunks) if not too_large else b"",
                self._parser.should_keep_alive(),
                too_large,
            )
        )
        self._reset()
        if len(self._pending) >= _PIPELINE_LIMIT and self._transport and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._serve())

    # -- answering ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        while self._pending and not self._closing:
            parsed = self._pending.popleft()
            if self._paused and len(self._pending) < _PIPELINE_LIMIT // 2 and self._transport:
                self._paused = False
                self._transport.resume_reading()
            response = await self._server.answer(parsed)
            self._write(parsed, response)
            self.last_active = self._server.now()
            if not parsed.keep_alive:
                self._close()

    def _write(self, parsed: Request, response: Response) -> None:
        if self._transport is None or self._closing:
            return
        head = [
            _STATUS_LINES.get(response.status) or _status_line(response.status),
            self._server.clock.date_line(),
            b"Server: inference-gateway\r\n",
            f"Content-Length: {len(response.body)}\r\n".encode(),
        ]
        if response.content_type is not None:
            head.append(f"Content-Type: {response.content_type}\r\n".encode())
        for name, value in response.headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not parsed.keep_alive:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        if parsed.method != "HEAD":
            head.append(response.body)
        self._transport.write(b"".join(head))

    def _fail(self, status: int, message: str) -> None:
        """Answer a request that cannot be parsed, then close: the stream is lost."""
        self._write(
            Request("GET", "", {}, b"", keep_alive=False), json_response({"error": message}, status)
        )
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def close_when_idle(self) -> None:
        if self._task is None or self._task.done():
            self._close()


class HttpServer:
    """Serves ``router`` with ``on_error`` turning a handler's exception into a response."""

    def __init__(
        self, router: Router, on_error: ErrorHandler, max_body: int, keepalive_s: float = 75.0
    ) -> None:
        self.router = router
        self.on_error = on_error
        self.max_body = max_body
        self.keepalive_s = keepalive_s  # an idle connection is closed after this (aiohttp's 75)
        self.clock = _Clock()
        self.now = time.monotonic
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def close_idle(self) -> int:
        """Close the connections idle for ``keepalive_s``; return how many."""
        cutoff = self.now() - self.keepalive_s
        stale = [c for c in self.connections if c.idle and c.last_active <= cutoff]
        for conn in stale:
            conn.close_when_idle()
        return len(stale)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(0.1, self.keepalive_s / 2)))  # never a spin
            self.close_idle()

    async def answer(self, request: Request) -> Response:
        found = self.router.resolve(request.method, request.path)
        if isinstance(found, int):
            what = "no such path" if found == 404 else f"method {request.method} not allowed"
            return json_response({"error": f"{what}: {request.path}"}, found)
        handler, request.params = found
        if request.too_large:
            message = f"request body is too large: {request.too_large} bytes > {self.max_body}"
            return json_response({"error": message}, 413)
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

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: a free port); return the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True
        )
        self._sweeper = loop.create_task(self._sweep())
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop listening, let requests being answered finish (up to ``grace_s``), close."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_when_idle()
        tasks = [c._task for c in self.connections if c._task is not None and not c._task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for conn in list(self.connections):
            conn._close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def start_http_server(
    router: Router, on_error: ErrorHandler, host: str, port: int, max_body: int
) -> tuple[HttpServer, int]:
    server = HttpServer(router, on_error, max_body)
    return server, await server.start(host, port)
