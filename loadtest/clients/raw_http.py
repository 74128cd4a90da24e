"""A lean HTTP/1.1 load-generator client: the same v2 request as ``HttpClient``, far less CPU.

aiohttp spends most of a generator's CPU building request objects and parsing headers it never
needs. This client writes one pre-built byte string (request line, headers and the pre-encoded
v2 body) on a pooled keep-alive connection and reads back only what a load test uses: the status,
``Content-Length``, the binary-extension header length and ``Connection: close``. It speaks just
enough HTTP/1.1 for v2 servers (the gateway, the simulated pod, Triton): answers with a
``Content-Length``; a chunked answer is an error. Each concurrent request uses its own
connection, as HTTP/1.1 requires; idle connections are reused, newest first.

Besides ``await infer()`` it has ``submit(done)``, which sends at once and calls ``done(error or
None)`` from the connection's callback: no task and no coroutine per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Sequence
from typing import cast
from urllib.parse import urlsplit

from loadtest.clients.base import ClientSpec, InferError, SampledClient
from protos.v2_http import HEADER_LENGTH, decode_response, encode_request

__all__ = ["Done", "RawHttpClient", "build_request", "parse_head"]

_HEADER_LENGTH = HEADER_LENGTH.lower().encode()
Done = Callable[[BaseException | None], None]


def build_request(
    host: str,
    path: str,
    body: bytes,
    header_length: int | None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The whole POST, head and body, as sent on every call; ``headers`` go after the rest."""
    content_type = "application/json" if header_length is None else "application/octet-stream"
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    if header_length is not None:
        head.append(f"{HEADER_LENGTH}: {header_length}")
    head += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, int, int | None, bool]:
    """(status, content length, inference header length, keep alive) of a response head."""
    lines = head.split(b"\r\n")
    status_line = lines[0]
    if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
        raise ValueError(f"bad status line {status_line[:40]!r}")
    status = int(status_line[9:12])
    keep_alive = status_line[7:8] == b"1"
    length: int | None = None
    header_length: int | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == _HEADER_LENGTH:
            header_length = int(value)
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not supported")
    if length is None:
        if not (status in (204, 304) or 100 <= status < 200):
            raise ValueError("response without Content-Length")
        length = 0
    return status, length, header_length, keep_alive


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; tells its client the outcome."""

    def __init__(self, client: RawHttpClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.done: Done | None = None  # the request in flight's callback
        self.check = False
        self.timer: asyncio.TimerHandle | None = None
        self._buf = bytearray()
        self._need = -1  # bytes of head + body once the head is parsed
        self._body_at = 0
        self._status = 0
        self._header_length: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.reusable = False
        self._need = -1
        self._buf.clear()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                status, length, header_length, keep_alive = parse_head(bytes(buf[:end]))
            except ValueError as exc:
                self.client.failed(self, InferError("http bad response", str(exc)))
                return
            self._status, self._header_length = status, header_length
            self._body_at = end + 4
            self._need = end + 4 + length
            self.reusable = keep_alive
        if len(buf) >= self._need and self.done is not None:
            self.reusable = self.reusable and len(buf) == self._need
            body = bytes(buf[self._body_at : self._need])
            self.client.answered(self, self._status, self._header_length, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self.done is not None:
            detail = str(exc) if exc else "the server closed the connection"
            self.client.failed(self, InferError("http ConnectionError", detail))

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class RawHttpClient(SampledClient):
    """POSTs one pre-built v2 infer request per call; ``binary`` as ``HttpClient``'s.

    Build it inside the event loop that will use it.
    """

    def __init__(self, spec: ClientSpec, *, binary: bool) -> None:
        super().__init__(spec)
        url = urlsplit(spec.target if "//" in spec.target else f"http://{spec.target}")
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"raw HTTP client needs an http://host:port target, got {spec.target}")
        self._host, self._port = url.hostname, url.port or 80
        payload = spec.payload
        body, header_length = encode_request(payload.request(binary_output=binary), binary)
        path = f"{url.path.rstrip('/')}/v2/models/{payload.model}/infer"
        host = f"{self._host}:{self._port}"
        self._request = build_request(host, path, body, header_length, spec.headers)
        self._timeout = spec.timeout_s
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    @property
    def connections(self) -> int:
        """Connections open now (idle or busy)."""
        return len(self._open)

    def submit(self, done: Done) -> None:
        """Send one request now (or once a new connection is up); ``done`` gets the outcome."""
        if self._idle:
            self._send(self._idle.pop(), done)
            return
        task = self._loop.create_task(self._connect_and_send(done))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def infer(self) -> None:
        future: asyncio.Future[None] = self._loop.create_future()

        def done(exc: BaseException | None) -> None:
            if future.done():
                return
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)

        self.submit(done)
        await future

    async def _connect_and_send(self, done: Done) -> None:
        try:
            _, conn = await asyncio.wait_for(
                self._loop.create_connection(lambda: _Connection(self), self._host, self._port),
                self._timeout,
            )
        except TimeoutError:
            done(InferError("timeout", "connecting"))
            return
        except OSError as exc:
            done(InferError(f"http {type(exc).__name__}", str(exc)))
            return
        self._open.add(conn)
        self._send(conn, done)

    def _send(self, conn: _Connection, done: Done) -> None:
        conn.done = done
        conn.check = self._sampler.due()
        conn.timer = self._loop.call_later(self._timeout, self._expire, conn)
        conn.send(self._request)

    def _release(self, conn: _Connection) -> Done | None:
        done, conn.done = conn.done, None
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        if conn.reusable:
            self._idle.append(conn)
        else:
            conn.close()
            self._open.discard(conn)
        return done

    def answered(
        self, conn: _Connection, status: int, header_length: int | None, body: bytes
    ) -> None:
        """A whole answer arrived on ``conn``."""
        check = conn.check
        done = self._release(conn)
        if done is None:
            return
        if status != 200:
            done(InferError(f"http {status}", body[:200].decode("utf-8", "replace")))
            return
        if check:
            try:
                self._verify(decode_response(body, header_length))
            except Exception as exc:  # a wrong or undecodable answer
                done(exc)
                return
        done(None)

    def failed(self, conn: _Connection, exc: BaseException) -> None:
        """``conn`` broke before its answer came."""
        conn.reusable = False
        done = self._release(conn)
        if done is not None:
            done(exc)

    def _expire(self, conn: _Connection) -> None:
        conn.timer = None
        self.failed(conn, InferError("timeout"))

    async def aclose(self) -> None:
        for task in list(self._connecting):
            task.cancel()
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)
