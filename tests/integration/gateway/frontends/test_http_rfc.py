"""HTTP/1.1 as RFC 9112 and 9110 have it: trailers are not headers, a path is decoded once and
routed on its raw segments, HTTP/1.0 framing and keep-alive, the Host rules, and the v2
``Inference-Header-Content-Length`` as a number of bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.config import parse_config
from gateway.core import Gateway
from gateway.frontends.rest import build_router, on_error
from tests.integration.gateway.frontends.http_wire import (
    Served,
    closed,
    exchange,
    get,
    post,
    read_response,
    serving,
)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as s:
        yield s


async def test_trailers_of_a_chunked_body_are_not_headers(served: Served) -> None:
    raw = (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nInference-Timeout-Ms: 1\r\nX-Trailer: t\r\n\r\n"
    )
    [(status, _, body)] = await exchange(served.port, raw)
    assert (status, body) == (200, b"ok")
    [request] = served.handlers.seen
    assert "inference-timeout-ms" not in request.headers and "x-trailer" not in request.headers


async def test_a_path_is_percent_decoded_once(served: Served) -> None:
    [(status, headers, _)] = await exchange(
        served.port, post("/v2/models/%2573%2569%256D/infer", b"")
    )
    assert (status, headers["x-model"]) == (200, "%73%69%6D")


async def test_an_encoded_slash_is_part_of_its_segment(served: Served) -> None:
    [(status, headers, _)] = await exchange(served.port, post("/v2/models/a%2Fb/infer", b""))
    assert (status, headers["x-model"]) == (200, "a/b")
    [(status, _, _)] = await exchange(served.port, post("/v2/models/a/b/infer", b""))
    assert status == 404


async def test_http_1_0_with_chunked_is_400_and_closed(served: Served) -> None:
    reader, _ = await served.connect(
        b"POST /v2/models/m/infer HTTP/1.0\r\nConnection: keep-alive\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    status, headers, body = await read_response(reader)
    assert status == 400 and b"Transfer-Encoding" in body and headers["connection"] == "close"
    assert await closed(reader)
    assert served.handlers.seen == []


async def test_http_1_0_keep_alive_is_said_and_kept(served: Served) -> None:
    reader, writer = await served.connect(
        get("/v2/health/live", "Connection: keep-alive\r\n", version="1.0")
    )
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"].lower()) == (200, "keep-alive")
    writer.write(get("/v2/health/live", version="1.0"))  # no keep-alive asked: closed after
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await closed(reader)


async def test_http_1_0_needs_no_host(served: Served) -> None:
    [(status, _, _)] = await exchange(served.port, get("/v2/health/live", version="1.0"))
    assert status == 200


@pytest.mark.parametrize("hosts", ["", "Host: a\r\nHost: b\r\n", "Host: a\r\nHost: a\r\n"])
async def test_http_1_1_needs_exactly_one_host(served: Served, hosts: str) -> None:
    reader, _ = await served.connect(f"GET /v2/health/live HTTP/1.1\r\n{hosts}\r\n".encode())
    status, headers, body = await read_response(reader)
    assert status == 400 and b"Host" in body and headers["connection"] == "close"
    assert await closed(reader)
    assert served.handlers.seen == []


async def test_an_upgrade_is_ignored_the_request_answered_then_closed(served: Served) -> None:
    reader, _ = await served.connect(
        get("/v2/health/live", "Connection: upgrade\r\nUpgrade: websocket\r\n") + b"\x81\x00"
    )
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await closed(reader)


@pytest.fixture
async def rest() -> AsyncIterator[Served]:
    config = parse_config({"models": [{"name": "sim", "endpoints": ["127.0.0.1:9"]}]})
    async with serving(build_router(Gateway(config)), on_error) as s:
        yield s


@pytest.mark.parametrize("value", ["1_15", " +115 ", "0x73", "115.0"])
async def test_the_inference_header_length_must_be_digits(rest: Served, value: str) -> None:
    head = f"Inference-Header-Content-Length: {value}\r\nInference-Timeout-Ms: 200\r\n"
    body = b'{"inputs":[]}'.ljust(115) + b"\0" * 4
    [(status, _, text)] = await exchange(rest.port, post("/v2/models/sim/infer", body, head))
    assert status == 400
    assert b"Inference-Header-Content-Length" in text and value.strip().encode() in text
