"""Answers strictly in request order: an error for a later pipelined request, or the
``100 Continue`` of a later one, never goes ahead of the answer owed to an earlier one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.integration.gateway.frontends.http_wire import (
    LIMIT,
    Served,
    closed,
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


async def test_a_request_that_closes_is_answered_and_what_follows_it_ignored(
    served: Served,
) -> None:
    reader, _ = await served.connect(get("/slow/20", "Connection: close\r\n") + get("/slow/1"))
    status, headers, body = await read_response(reader)
    assert (status, body, headers["connection"]) == (200, b"20", "close")
    assert await closed(reader)
    assert [r.path for r in served.handlers.seen] == ["/slow/20"]


async def test_a_malformed_request_is_answered_after_those_before_it(served: Served) -> None:
    reader, _ = await served.connect(get("/slow/30") + get("/slow/1") + b"NOT HTTP\r\n\r\n")
    answers = [await read_response(reader) for _ in range(3)]
    assert [(s, b) for s, _, b in answers[:2]] == [(200, b"30"), (200, b"1")]
    status, headers, body = answers[2]
    assert status == 400 and b"malformed" in body and headers["connection"] == "close"
    assert await closed(reader)


async def test_a_body_over_the_limit_is_refused_after_the_answers_before_it(
    served: Served,
) -> None:
    reader, _ = await served.connect(get("/slow/30") + post("/v2/models/m/infer", b"x" * 2000))
    first, second = await read_response(reader), await read_response(reader)
    assert (first[0], first[2]) == (200, b"30")
    assert second[0] == 413 and second[1]["connection"] == "close"
    assert await closed(reader)


async def test_100_continue_waits_for_the_answer_before_it(served: Served) -> None:
    reader, writer = await served.connect(get("/slow/40") + expecting_continue(2))
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"40")  # not the 100 Continue of the later request
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    writer.write(b"ok")
    assert (await read_response(reader))[::2] == (200, b"ok")


async def test_a_refusal_before_the_body_waits_for_the_answer_before_it(served: Served) -> None:
    reader, _ = await served.connect(get("/slow/40") + expecting_continue(LIMIT + 1))
    first, second = await read_response(reader), await read_response(reader)
    assert (first[0], first[2]) == (200, b"40")
    assert second[0] == 413
    assert await closed(reader)
