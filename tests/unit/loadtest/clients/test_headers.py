"""A client spec's extra headers: sent by every client kind (HTTP headers, gRPC metadata)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web

from loadtest.clients.base import ClientSpec, InferClient, open_client
from loadtest.clients.raw_http import RawHttpClient, build_request
from protos import grpc_service_pb2 as pb

HEADERS = (("Authorization", "Bearer key-a"), ("X-Bench-Note", "tenants"))
SERVICE = "inference.GRPCInferenceService"


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP server that answers every infer 200 and keeps each request's headers."""
    seen: list[dict[str, str]] = []

    async def infer(request: web.Request) -> web.Response:
        await request.read()
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application()
    app.router.add_post("/v2/models/{model}/infer", infer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def grpc_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A loopback gRPC server (raw bytes) that answers ModelInfer and ModelStreamInfer and keeps
    each call's metadata."""
    seen: list[dict[str, str]] = []

    def keep(context: Any) -> None:
        seen.append({str(k): str(v) for k, v in context.invocation_metadata()})

    async def infer(request: bytes, context: Any) -> bytes:
        keep(context)
        return b""  # an empty ModelInferResponse

    async def stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        keep(context)
        async for raw in requests:
            asked = pb.ModelInferRequest.FromString(raw)
            answer = pb.ModelStreamInferResponse(infer_response=pb.ModelInferResponse(id=asked.id))
            yield answer.SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
            "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(stream),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        await server.stop(None)


def _client(kind: str, target: str, headers: tuple[tuple[str, str], ...]) -> InferClient:
    """The client under test: the lean HTTP client for ``raw-*``, else ``open_client``'s."""
    raw = kind.startswith("raw-")
    spec = ClientSpec(kind.removeprefix("raw-"), target, verify_every=0, headers=headers)
    if raw:
        return RawHttpClient(spec, binary=spec.kind == "http-binary")
    return open_client(spec)


async def _twice(client: InferClient) -> None:
    try:
        await client.infer()
        await client.infer()
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["http-json", "http-binary", "raw-http-json", "raw-http-binary"])
async def test_http_clients_send_the_headers_on_every_request(
    http_server: tuple[str, list[dict[str, str]]], kind: str
) -> None:
    url, seen = http_server
    await _twice(_client(kind, url, HEADERS))
    assert len(seen) == 2
    for headers in seen:
        assert headers["authorization"] == "Bearer key-a"
        assert headers["x-bench-note"] == "tenants"


@pytest.mark.parametrize("kind", ["http-json", "raw-http-json"])
async def test_http_clients_send_no_extra_header_without_any(
    http_server: tuple[str, list[dict[str, str]]], kind: str
) -> None:
    url, seen = http_server
    await _twice(_client(kind, url, ()))
    assert seen and all("authorization" not in h for h in seen)


@pytest.mark.parametrize("kind", ["grpc", "grpc-stream"])
async def test_grpc_clients_send_the_headers_as_lower_case_metadata(
    grpc_server: tuple[str, list[dict[str, str]]], kind: str
) -> None:
    address, seen = grpc_server
    await _twice(_client(kind, address, HEADERS))
    assert seen  # one per call (unary) or per stream
    for metadata in seen:
        assert metadata["authorization"] == "Bearer key-a"
        assert metadata["x-bench-note"] == "tenants"


@pytest.mark.parametrize("kind", ["grpc", "grpc-stream"])
async def test_grpc_clients_send_no_extra_metadata_without_any(
    grpc_server: tuple[str, list[dict[str, str]]], kind: str
) -> None:
    address, seen = grpc_server
    await _twice(_client(kind, address, ()))
    assert seen and all("authorization" not in m for m in seen)


def test_the_raw_request_carries_the_headers_in_its_head() -> None:
    request = build_request("h:1", "/v2/models/sim/infer", b"{}", None, HEADERS)
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert b"Authorization: Bearer key-a" in lines
    assert b"X-Bench-Note: tenants" in lines
    assert body == b"{}"


def test_a_raw_request_without_headers_is_unchanged() -> None:
    plain = build_request("h:1", "/p", b"{}", None)
    assert build_request("h:1", "/p", b"{}", None, ()) == plain
    assert plain.count(b"\r\n") == 5  # request line, Host, Content-Type, Content-Length, end


def test_grpc_metadata_is_none_without_headers_and_lower_case_with() -> None:
    assert ClientSpec("grpc", "a:1").grpc_metadata() is None
    spec = ClientSpec("grpc", "a:1", headers=HEADERS)
    assert spec.grpc_metadata() == (("authorization", "Bearer key-a"), ("x-bench-note", "tenants"))


@pytest.mark.parametrize(
    "headers",
    [(("Authorization", "Bearer k\r\nX-Evil: 1"),), (("Bad Name", "v"),), (("", "v"),)],
)
def test_a_spec_refuses_headers_that_would_break_the_request(
    headers: tuple[tuple[str, str], ...],
) -> None:
    with pytest.raises(ValueError, match="header"):
        ClientSpec("http-json", "http://127.0.0.1:1", headers=headers)
