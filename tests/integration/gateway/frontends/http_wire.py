"""What the REST server's tests share: a server on 127.0.0.1 with test routes, and a raw
client that writes bytes and reads answers off the socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.frontends.http_server import (
    HttpLimits,
    HttpServer,
    Request,
    Response,
    Router,
    json_response,
)
from gateway.frontends.http_types import ErrorHandler

__all__ = [
    "LIMIT",
    "Answer",
    "Handlers",
    "Served",
    "closed",
    "connect",
    "exchange",
    "expecting_continue",
    "get",
    "post",
    "read_response",
    "serving",
    "until",
]

LIMIT = 1000  # the body limit of the test server
WAIT_S = 5.0  # the longest any read waits


class Handlers:
    """Test routes: echo, sleep, hang until cancelled, fail, and one that counts its calls."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()
        self.release = asyncio.Event()  # lets /hang answer
        self.seen: list[Request] = []

    async def echo(self, request: Request) -> Response:
        self.seen.append(request)
        return Response(200, request.body, "text/plain", (("X-Model", request.params["model"]),))

    async def slow(self, request: Request) -> Response:
        self.seen.append(request)
        await asyncio.sleep(float(request.params["ms"]) / 1000)
        return Response(200, request.params["ms"].encode())

    async def hang(self, request: Request) -> Response:
        self.seen.append(request)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Response(200, b"released")

    async def fail(self, request: Request) -> Response:
        raise ValueError(request.params["kind"])

    async def health(self, request: Request) -> Response:
        self.seen.append(request)
        return Response(200)

    async def big(self, request: Request) -> Response:
        return Response(200, b"x" * int(request.params["n"]))


def on_error(_: Request, exc: BaseException) -> Response | None:
    if isinstance(exc, ValueError) and str(exc) == "known":
        return json_response({"error": "a known failure"}, 400)
    return None


@dataclass
class Served:
    server: HttpServer
    handlers: Handlers
    port: int
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def connect(self, raw: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await connect(self.port, raw)
        self.writers.append(writer)
        return reader, writer


@contextlib.asynccontextmanager
async def serving(
    router: Router | None = None, errors: ErrorHandler = on_error, **limits: Any
) -> AsyncIterator[Served]:
    """A server with the test routes (or ``router`` and its ``errors``), and ``limits`` over
    the test defaults."""
    handlers = Handlers()
    if router is None:
        router = Router()
        router.add("POST", "/v2/models/{model}/infer", handlers.echo)
        router.add("GET", "/slow/{ms}", handlers.slow)
        router.add("GET", "/hang", handlers.hang)
        router.add("GET", "/fail/{kind}", handlers.fail)
        router.add("GET", "/big/{n}", handlers.big)
        router.add("GET", "/v2/health/live", handlers.health)
    server = HttpServer(router, errors, replace(HttpLimits(max_body=LIMIT), **limits))
    port = await server.start("127.0.0.1", 0)
    served = Served(server, handlers, port)
    try:
        yield served
    finally:
        for writer in served.writers:
            writer.transport.abort()
        handlers.release.set()
        await server.stop(grace_s=1.0)


async def connect(port: int, raw: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the server that has sent ``raw``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    return reader, writer


Answer = tuple[int, dict[str, str], bytes]


async def read_response(reader: asyncio.StreamReader, head_only: bool = False) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if head_only:
        return status, headers, b""
    body = await asyncio.wait_for(
        reader.readexactly(int(headers.get("content-length", "0"))), WAIT_S
    )
    return status, headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (EOF or reset) with nothing more sent."""
    try:
        return await asyncio.wait_for(reader.read(1), WAIT_S) == b""
    except ConnectionResetError:
        return True


async def until(condition: Callable[[], bool], every_s: float = 0.005) -> None:
    """Wait (5 s at most) until ``condition`` holds."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(every_s)

    await asyncio.wait_for(poll(), WAIT_S)


async def exchange(port: int, raw: bytes, responses: int = 1) -> list[Answer]:
    reader, writer = await connect(port, raw)
    try:
        return [await read_response(reader) for _ in range(responses)]
    finally:
        writer.close()


def get(path: str, extra: str = "", version: str = "1.1") -> bytes:
    host = "Host: x\r\n" if version == "1.1" else ""
    return f"GET {path} HTTP/{version}\r\n{host}{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


def expecting_continue(length: int, spelled: str | None = None) -> bytes:
    """The head of a POST of ``length`` bytes that waits for ``100 Continue``."""
    value = str(length) if spelled is None else spelled
    return (
        f"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
