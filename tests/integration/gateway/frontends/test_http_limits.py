"""Size limits counted as the bytes arrive: an unfinished head line, a body over the limit
(refused at once, before it is read), Content-Length as RFC 9110 spells it, chunk lines, and
the connection cap."""

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
    read_response,
    serving,
    until,
)

CHUNKED = b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as s:
        yield s


async def test_an_unfinished_header_line_over_the_head_limit_is_431(served: Served) -> None:
    reader, writer = await served.connect(b"GET /slow/1 HTTP/1.1\r\nHost: x\r\nX-Big: ")
    for _ in range(16):  # 1 MiB of one header value, never ended
        writer.write(b"a" * 65536)
    status, headers, body = await read_response(reader)
    assert status == 431 and headers["connection"] == "close" and b"65536" in body
    assert await closed(reader)


async def test_a_body_over_the_limit_is_refused_before_it_is_sent(served: Served) -> None:
    head = b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    reader, _ = await served.connect(head % (LIMIT + 1) + b"x" * 10)  # the rest never comes
    status, headers, body = await read_response(reader)
    assert status == 413 and str(LIMIT + 1).encode() in body
    assert headers["connection"] == "close"
    assert await closed(reader)


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(served: Served) -> None:
    reader, _ = await served.connect(CHUNKED + b"%x\r\n" % (LIMIT + 1) + b"x" * (LIMIT + 1))
    status, headers, _ = await read_response(reader)  # the body has not ended: no last chunk
    assert status == 413 and headers["connection"] == "close"
    assert await closed(reader)


@pytest.mark.parametrize("spelled", [f"{LIMIT + 1} ", f"\t{LIMIT + 1}", f"  {LIMIT + 1}  "])
async def test_content_length_with_whitespace_is_still_checked_before_100_continue(
    served: Served, spelled: str
) -> None:
    reader, _ = await served.connect(expecting_continue(LIMIT + 1, spelled))
    status, _, body = await read_response(reader)
    assert status == 413 and str(LIMIT + 1).encode() in body


async def test_a_content_length_with_whitespace_frames_the_body(served: Served) -> None:
    reader, _ = await served.connect(expecting_continue(2, " 2 "))
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100 Continue")


@pytest.mark.parametrize(
    "length", [b"+5", b"5_0", b"0x5", b"5, 6", b"-1", "\N{SUPERSCRIPT TWO}".encode()]
)
async def test_a_content_length_that_is_not_digits_is_400(served: Served, length: bytes) -> None:
    reader, _ = await served.connect(
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
    )
    status, headers, _ = await read_response(reader)
    assert status == 400 and headers["connection"] == "close"


async def test_two_content_lengths_are_400(served: Served) -> None:
    reader, _ = await served.connect(
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    assert (await read_response(reader))[0] == 400


async def test_a_long_chunk_extension_is_400(served: Served) -> None:
    reader, _ = await served.connect(
        CHUNKED + b"3;ext=" + b"e" * 256 * 1024 + b"\r\nabc\r\n0\r\n\r\n"
    )
    status, headers, body = await read_response(reader)
    assert status == 400 and b"chunk-size line" in body and headers["connection"] == "close"
    assert await closed(reader)


async def test_past_the_connection_cap_a_new_connection_gets_503() -> None:
    async with serving(max_connections=3) as served:
        held = []
        for _ in range(3):
            reader, writer = await served.connect(get("/v2/health/live"))
            assert (await read_response(reader))[0] == 200  # accepted and counted
            held.append(writer)
        reader, _ = await served.connect(get("/v2/health/live"))
        status, headers, _ = await read_response(reader)
        assert status == 503 and headers["connection"] == "close"
        assert await closed(reader)
        held[0].close()
        await until(lambda: len(served.server.connections) < 3)
        reader, _ = await served.connect(get("/v2/health/live"))
        assert (await read_response(reader))[0] == 200
