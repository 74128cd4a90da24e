"""The lean HTTP/1.1 server, spoken to over raw loopback sockets: routing, keep-alive and
pipelining, chunked bodies, Expect: 100-continue, HEAD, the body limit, malformed requests,
handler errors, and a client that leaves cancelling its handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.frontends.http_server import HttpServer, Request, Response, Router, json_response

LIMIT = 1000


class Handlers:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()

    async def echo(self, request: Request) -> Response:
        return Response(200, request.body, "text/plain", (("X-Model", request.params["model"]),))

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(float(request.params["ms"]) / 1000)
        return Response(200, request.params["ms"].encode())

    async def hang(self, _: Request) -> Response:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Response(200)

    async def fail(self, request: Request) -> Response:
        raise ValueError(request.params["kind"])

    async def health(self, _: Request) -> Response:
        return Response(200)


def on_error(_: Request, exc: BaseException) -> Response | None:
    if isinstance(exc, ValueError) and str(exc) == "known":
        return json_response({"error": "a known failure"}, 400)
    return None


@pytest.fixture
async def server_and_port() -> AsyncIterator[tuple[HttpServer, Handlers, int]]:
    handlers = Handlers()
    router = Router()
    router.add("POST", "/v2/models/{model}/infer", handlers.echo)
    router.add("GET", "/slow/{ms}", handlers.slow)
    router.add("GET", "/hang", handlers.hang)
    router.add("GET", "/fail/{kind}", handlers.fail)
    router.add("GET", "/v2/health/live", handlers.health)
    server = HttpServer(router, on_error, LIMIT)
    port = await server.start("127.0.0.1", 0)
    yield server, handlers, port
    await server.stop(grace_s=1.0)


@pytest.fixture
def served(server_and_port: tuple[HttpServer, Handlers, int]) -> tuple[Handlers, int]:
    return server_and_port[1], server_and_port[2]


async def connect(port: int, raw: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the server that has sent ``raw``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    return reader, writer


def expecting_continue(length: int) -> bytes:
    """The head of a POST of ``length`` bytes that waits for ``100 Continue``."""
    return (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        b"Expect: 100-continue\r\n\r\n" % length
    )


async def exchange(
    port: int, raw: bytes, responses: int = 1
) -> list[tuple[int, dict[str, str], bytes]]:
    reader, writer = await connect(port, raw)
    out = [await read_response(reader) for _ in range(responses)]
    writer.close()
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


async def test_a_route_gets_its_path_parameters_and_body(served: tuple[Handlers, int]) -> None:
    _, port = served
    [(status, headers, body)] = await exchange(port, post("/v2/models/m%20x/infer", b"hello"))
    assert (status, body) == (200, b"hello")
    assert headers["x-model"] == "m x"
    assert headers["content-type"] == "text/plain"
    assert "date" in headers


async def test_unknown_path_is_404_and_wrong_method_405(served: tuple[Handlers, int]) -> None:
    _, port = served
    [(status, _, body)] = await exchange(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404 and b"/nope" in body
    [(status, _, body)] = await exchange(port, post("/v2/health/live", b""))
    assert status == 405 and b"POST" in body


async def test_pipelined_requests_are_answered_in_order(served: tuple[Handlers, int]) -> None:
    _, port = served
    raw = b"".join(f"GET /slow/{ms} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for ms in (30, 1, 10))
    answers = await exchange(port, raw, 3)
    assert [body for _, _, body in answers] == [b"30", b"1", b"10"]


async def test_a_chunked_body_is_reassembled(served: tuple[Handlers, int]) -> None:
    _, port = served
    raw = (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    [(status, _, body)] = await exchange(port, raw)
    assert (status, body) == (200, b"abcdefg")


async def test_expect_100_continue_is_answered_before_the_body(
    served: tuple[Handlers, int],
) -> None:
    _, port = served
    reader, writer = await connect(port, expecting_continue(2))
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    writer.write(b"ok")
    status, _, body = await read_response(reader)
    writer.close()
    assert (status, body) == (200, b"ok")


async def test_head_answers_a_get_route_without_a_body(served: tuple[Handlers, int]) -> None:
    _, port = served
    reader, writer = await connect(
        port, b"HEAD /slow/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /slow/2 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 1" in head
    status, _, body = await read_response(reader)  # the next answer follows at once
    writer.close()
    assert (status, body) == (200, b"2")


async def test_a_body_over_the_limit_is_413_and_the_connection_lives(
    served: tuple[Handlers, int],
) -> None:
    _, port = served
    raw = post("/v2/models/m/infer", b"x" * (LIMIT + 1)) + post("/v2/models/m/infer", b"fits")
    (status, _, body), second = await exchange(port, raw, 2)
    assert status == 413 and str(LIMIT + 1).encode() in body
    assert second[0] == 200 and second[2] == b"fits"


async def test_a_malformed_request_is_400_and_closed(served: tuple[Handlers, int]) -> None:
    _, port = served
    reader, writer = await connect(port, b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 400 and b"malformed" in body
    assert headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_handler_errors_are_answered_never_dropped(served: tuple[Handlers, int]) -> None:
    _, port = served
    raw = b"GET /fail/known HTTP/1.1\r\nHost: x\r\n\r\nGET /fail/other HTTP/1.1\r\nHost: x\r\n\r\n"
    (s1, _, b1), (s2, _, b2) = await exchange(port, raw, 2)
    assert (s1, b1) == (400, b'{"error":"a known failure"}')
    assert s2 == 500 and b"other" in b2


async def test_connection_close_is_honoured(served: tuple[Handlers, int]) -> None:
    _, port = served
    reader, writer = await connect(
        port, b"GET /slow/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    status, headers, _ = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_client_that_leaves_cancels_its_handler(served: tuple[Handlers, int]) -> None:
    handlers, port = served
    _, writer = await connect(port, b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(handlers.started.wait(), 5)
    writer.close()
    await asyncio.wait_for(handlers.cancelled.wait(), 5)


async def test_headers_over_the_limit_are_431_and_closed(served: tuple[Handlers, int]) -> None:
    _, port = served
    reader, writer = await connect(
        port, b"GET /slow/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    )
    status, headers, _ = await read_response(reader)
    assert status == 431 and headers["connection"] == "close"
    writer.close()


async def test_idle_connections_are_closed_and_busy_ones_kept(
    server_and_port: tuple[HttpServer, Handlers, int],
) -> None:
    server, handlers, port = server_and_port
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    _, busy_writer = await connect(port, b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(handlers.started.wait(), 5)
    server.keepalive_s = 0.0
    assert server.close_idle() == 1  # the idle one; the one being answered stays
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""
    assert not handlers.cancelled.is_set()
    idle_writer.close()
    busy_writer.close()


async def test_an_expected_body_over_the_limit_is_refused_before_it_is_sent(
    served: tuple[Handlers, int],
) -> None:
    _, port = served
    reader, writer = await connect(
        port, expecting_continue(LIMIT + 1)
    )  # no body: the answer must come without it
    status, headers, body = await read_response(reader)
    assert status == 413 and str(LIMIT + 1).encode() in body
    assert headers["connection"] == "close"
    writer.close()
