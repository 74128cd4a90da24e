"""The lean HTTP/1.1 server, spoken to over raw loopback sockets: routing, keep-alive and
pipelining, chunked bodies, Expect: 100-continue, HEAD, the body limit, malformed requests,
handler errors, idle connections, and a client that leaves cancelling its handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.integration.gateway.frontends.http_wire import (
    LIMIT,
    Served,
    closed,
    exchange,
    expecting_continue,
    get,
    post,
    read_response,
    serving,
)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as s:
        yield s


async def test_a_route_gets_its_path_parameters_and_body(served: Served) -> None:
    [(status, headers, body)] = await exchange(served.port, post("/v2/models/m%20x/infer", b"hi"))
    assert (status, body) == (200, b"hi")
    assert headers["x-model"] == "m x"
    assert headers["content-type"] == "text/plain"
    assert "date" in headers


async def test_unknown_path_is_404_and_wrong_method_405(served: Served) -> None:
    [(status, _, body)] = await exchange(served.port, get("/nope"))
    assert status == 404 and b"/nope" in body
    [(status, _, body)] = await exchange(served.port, post("/v2/health/live", b""))
    assert status == 405 and b"POST" in body


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    raw = b"".join(get(f"/slow/{ms}") for ms in (30, 1, 10))
    answers = await exchange(served.port, raw, 3)
    assert [body for _, _, body in answers] == [b"30", b"1", b"10"]


async def test_a_chunked_body_is_reassembled(served: Served) -> None:
    raw = (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4;name=value\r\ndefg\r\n0\r\n\r\n"
    )
    [(status, _, body)] = await exchange(served.port, raw)
    assert (status, body) == (200, b"abcdefg")


async def test_a_request_split_at_every_byte_is_parsed(served: Served) -> None:
    raw = (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n" + post("/v2/models/n/infer", b"fits")
    )
    reader, writer = await served.connect()
    for i in range(len(raw)):
        writer.write(raw[i : i + 1])
        await writer.drain()
    first, second = await read_response(reader), await read_response(reader)
    assert (first[0], first[2], second[0], second[2]) == (200, b"abc", 200, b"fits")


async def test_expect_100_continue_is_answered_before_the_body(served: Served) -> None:
    reader, writer = await served.connect(expecting_continue(2))
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    writer.write(b"ok")
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"ok")


async def test_head_answers_a_get_route_without_a_body(served: Served) -> None:
    reader, _ = await served.connect(b"HEAD /slow/1 HTTP/1.1\r\nHost: x\r\n\r\n" + get("/slow/2"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 1" in head
    status, _, body = await read_response(reader)  # the next answer follows at once
    assert (status, body) == (200, b"2")


async def test_a_malformed_request_is_400_and_closed(served: Served) -> None:
    reader, _ = await served.connect(b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 400 and b"malformed" in body
    assert headers["connection"] == "close"
    assert await closed(reader)


async def test_handler_errors_are_answered_never_dropped(served: Served) -> None:
    (s1, _, b1), (s2, _, b2) = await exchange(
        served.port, get("/fail/known") + get("/fail/other"), 2
    )
    assert (s1, b1) == (400, b'{"error":"a known failure"}')
    assert s2 == 500 and b"other" in b2


async def test_connection_close_is_honoured(served: Served) -> None:
    reader, _ = await served.connect(get("/slow/1", "Connection: close\r\n"))
    status, headers, _ = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await closed(reader)


async def test_a_client_that_leaves_cancels_its_handler(served: Served) -> None:
    _, writer = await served.connect(get("/hang"))
    await asyncio.wait_for(served.handlers.started.wait(), 5)
    writer.close()
    await asyncio.wait_for(served.handlers.cancelled.wait(), 5)


async def test_headers_over_the_limit_are_431_and_closed(served: Served) -> None:
    reader, _ = await served.connect(get("/slow/1", "X-Big: " + "a" * 70_000 + "\r\n"))
    status, headers, _ = await read_response(reader)
    assert status == 431 and headers["connection"] == "close"
    assert await closed(reader)


async def test_an_expected_body_over_the_limit_is_refused_before_it_is_sent(
    served: Served,
) -> None:
    reader, _ = await served.connect(expecting_continue(LIMIT + 1))  # no body is sent
    status, headers, body = await read_response(reader)
    assert status == 413 and str(LIMIT + 1).encode() in body
    assert headers["connection"] == "close"


async def test_idle_connections_are_closed_and_busy_ones_kept() -> None:
    async with serving(keepalive_s=0.2) as served:
        idle, _ = await served.connect()
        _, _ = await served.connect(get("/hang"))
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        assert await closed(idle)  # the idle one; the one being answered stays
        assert not served.handlers.cancelled.is_set()
        assert len(served.server.connections) == 1


async def test_a_kept_alive_connection_serves_many_requests(served: Served) -> None:
    reader, writer = await served.connect()
    for i in range(20):
        writer.write(post("/v2/models/m/infer", str(i).encode()))
        status, _, body = await read_response(reader)
        assert (status, body) == (200, str(i).encode())
    assert len(served.server.connections) == 1
