"""Deadlines of the REST server: a head or a body trickled in is answered 408 and closed, many
half-sent heads are all let go, and bytes that start no request do not keep a connection."""

from __future__ import annotations

import asyncio

from gateway.frontends.http_limits import Phase
from tests.integration.gateway.frontends.http_wire import (
    closed,
    connect,
    get,
    post,
    read_response,
    serving,
    until,
)

SHORT = 0.3  # s: the deadlines under test


async def trickle(writer: asyncio.StreamWriter, data: bytes, stop: asyncio.Event) -> None:
    """Send ``data`` a byte every 50 ms until it is sent or ``stop`` is set."""
    for i in range(len(data)):
        if stop.is_set() or writer.is_closing():
            return
        writer.write(data[i : i + 1])
        await asyncio.sleep(0.05)


async def test_a_trickled_head_is_408_and_closed() -> None:
    async with serving(head_timeout_s=SHORT) as served:
        reader, writer = await served.connect(b"GET /slow/1 HTTP/1.1\r\nHost: x\r\n")
        stop = asyncio.Event()
        sender = asyncio.create_task(trickle(writer, b"X-Slow: " + b"s" * 200, stop))
        status, headers, body = await read_response(reader)
        stop.set()
        await sender
        assert status == 408 and b"head" in body and headers["connection"] == "close"
        assert await closed(reader)


async def test_a_trickled_body_is_408_and_closed() -> None:
    async with serving(body_timeout_s=SHORT) as served:
        head = b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n"
        reader, writer = await served.connect(head)
        stop = asyncio.Event()
        sender = asyncio.create_task(trickle(writer, b"b" * 500, stop))
        status, _, body = await read_response(reader)
        stop.set()
        await sender
        assert status == 408 and b"body" in body
        assert await closed(reader)
        assert served.handlers.seen == []


async def test_many_half_sent_heads_are_all_let_go() -> None:
    async with serving(head_timeout_s=SHORT) as served:
        clients = [await connect(served.port, b"GET /slow/1 HTTP/1.1\r\n") for _ in range(300)]
        try:
            answers = await asyncio.gather(*(read_response(r) for r, _ in clients))
            assert {status for status, _, _ in answers} == {408}
            assert all(await asyncio.gather(*(closed(r) for r, _ in clients)))
        finally:
            for _, writer in clients:
                writer.transport.abort()


async def test_a_body_is_not_late_while_the_server_holds_reading_back() -> None:
    body = b"b" * 200_000
    async with serving(body_timeout_s=SHORT, read_ahead_bytes=1024, max_body=300_000) as served:
        reader, _ = await served.connect(get("/hang") + post("/v2/models/m/infer", body))
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        [conn] = served.server.connections
        await until(lambda: not conn.reading)
        assert conn.phase is Phase.BODY  # held back, mid-body
        await asyncio.sleep(2 * SHORT)  # past the body deadline, while held back
        served.handlers.release.set()
        first, second = await read_response(reader), await read_response(reader)
        assert (first[0], first[2]) == (200, b"released")
        assert (second[0], second[2]) == (200, body)


async def test_empty_lines_do_not_keep_an_idle_connection_open() -> None:
    async with serving(keepalive_s=SHORT) as served:
        reader, writer = await served.connect()
        stop = asyncio.Event()
        sender = asyncio.create_task(trickle(writer, b"\r\n" * 100, stop))
        assert await closed(reader)
        stop.set()
        await sender
