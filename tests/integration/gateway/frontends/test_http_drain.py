"""Drain: once ``HttpServer.stop`` begins, idle connections close at once, requests being
answered finish, and their answers carry ``Connection: close`` before the connection closes."""

from __future__ import annotations

import asyncio

from tests.integration.gateway.frontends.http_wire import (
    closed,
    connect,
    get,
    read_response,
    serving,
)


async def test_idle_connections_close_at_once_and_answers_in_flight_finish() -> None:
    async with serving(linger_s=0.2) as served:
        idle, _ = await served.connect(get("/v2/health/live"))
        assert (await read_response(idle))[0] == 200  # a kept-alive connection, now idle
        busy, _ = await served.connect(get("/hang"))
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        stopping = asyncio.create_task(served.server.stop(grace_s=5.0))
        assert await closed(idle)
        assert not stopping.done()  # the request being answered holds it
        served.handlers.release.set()
        status, headers, body = await read_response(busy)
        assert (status, body, headers["connection"]) == (200, b"released", "close")
        assert await closed(busy)
        await asyncio.wait_for(stopping, 5)
        assert not served.handlers.cancelled.is_set()


async def test_requests_parsed_before_the_drain_are_all_answered_the_last_with_close() -> None:
    async with serving(linger_s=0.2) as served:
        reader, _ = await served.connect(get("/hang") + get("/slow/1"))
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        stopping = asyncio.create_task(served.server.stop(grace_s=5.0))
        await asyncio.sleep(0)
        served.handlers.release.set()
        first, second = await read_response(reader), await read_response(reader)
        assert (first[0], first[2], "connection" in first[1]) == (200, b"released", False)
        assert (second[0], second[2], second[1]["connection"]) == (200, b"1", "close")
        assert await closed(reader)
        await asyncio.wait_for(stopping, 5)


async def test_a_request_being_received_when_the_drain_begins_is_answered() -> None:
    async with serving(linger_s=0.2) as served:
        reader, writer = await served.connect(b"GET /slow/1 HTTP/1.1\r\nHo")
        await asyncio.sleep(0.05)  # the head has begun to arrive
        stopping = asyncio.create_task(served.server.stop(grace_s=5.0))
        await asyncio.sleep(0.05)
        writer.write(b"st: x\r\n\r\n" + get("/slow/2"))
        status, headers, body = await read_response(reader)
        assert (status, body, headers["connection"]) == (200, b"1", "close")
        assert await closed(reader)  # the request after it is not read
        await asyncio.wait_for(stopping, 5)


async def test_the_grace_ends_a_request_that_takes_too_long() -> None:
    async with serving(linger_s=0.2) as served:
        reader, _ = await served.connect(get("/hang"))
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        await asyncio.wait_for(served.server.stop(grace_s=0.2), 5)
        assert await closed(reader)
        await asyncio.wait_for(served.handlers.cancelled.wait(), 5)


async def test_no_new_connection_is_taken_once_the_drain_begins() -> None:
    async with serving(linger_s=0.2) as served:
        port = served.port
        _, _ = await served.connect(get("/hang"))
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        stopping = asyncio.create_task(served.server.stop(grace_s=5.0))
        await asyncio.sleep(0.05)
        try:
            reader, writer = await connect(port, get("/v2/health/live"))
        except OSError:
            pass  # refused: not listening any more
        else:
            assert await closed(reader)
            writer.close()
        served.handlers.release.set()
        await asyncio.wait_for(stopping, 5)
