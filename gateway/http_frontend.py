"""The v2 REST front-end (aiohttp): health, metadata, config, statistics and inference."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import Code, InferError
from gateway.service import Gateway
from protos import v2_http
from protos.json_format import message_to_dict
from protos.tensors import CodecError

__all__ = ["TIMEOUT_HEADER", "build_http_app", "error_response"]

_JSON = "application/json"
_BINARY = "application/octet-stream"
_GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type=_JSON)


def error_response(exc: InferError) -> web.Response:
    """An error as Triton writes it: the status for its kind and {"error": message}."""
    response = _json({"error": exc.message}, exc.code.http_status)
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return response


def _flag(ok: bool) -> web.Response:
    """Health answers: 200 when true, 400 when false, empty body (clients read the status)."""
    return web.Response(status=200 if ok else 400)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as a JSON error with its status; bad input is never a 500."""
    try:
        return await handler(request)
    except InferError as exc:
        return error_response(exc)
    except CodecError as exc:
        return error_response(InferError(Code.INVALID_ARGUMENT, str(exc)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"error": exc.reason}, exc.status)


def _names(request: web.Request) -> tuple[str, str]:
    info = request.match_info
    return info["model"], info.get("version", "")


def build_http_app(gateway: Gateway) -> web.Application:
    """The REST application over ``gateway``; body size limited by server.max_request_bytes."""
    app = web.Application(
        middlewares=[_errors], client_max_size=gateway.config.server.max_request_bytes
    )
    app[_GATEWAY] = gateway

    async def live(_: web.Request) -> web.Response:
        return _flag(gateway.live)

    async def ready(_: web.Request) -> web.Response:
        return _flag(gateway.ready)

    async def server_metadata(_: web.Request) -> web.Response:
        return _json(message_to_dict(gateway.server_metadata()))

    async def model_ready(request: web.Request) -> web.Response:
        return _flag(gateway.model(*_names(request)).ready)

    async def model_metadata(request: web.Request) -> web.Response:
        return _json(message_to_dict(gateway.spec(*_names(request)).metadata()))

    async def model_config(request: web.Request) -> web.Response:
        return _json(message_to_dict(gateway.model(*_names(request)).config()))

    async def model_stats(request: web.Request) -> web.Response:
        return _json(message_to_dict(gateway.statistics(*_names(request))))

    async def all_stats(_: web.Request) -> web.Response:
        return _json(message_to_dict(gateway.statistics()))

    async def infer(request: web.Request) -> web.Response:
        name, version = _names(request)
        gateway.model(name, version)  # 404 before reading a body for a model we do not serve
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise InferError(
                Code.PAYLOAD_TOO_LARGE, f"request body is too large: {exc.text}"
            ) from None
        decoded = v2_http.decode_request(body, _header_length(request))
        response = await gateway.infer("http", name, version, decoded, _timeout_header(request))
        binary = [v2_http.wants_binary(decoded, t.name) for t in response.outputs]
        out, json_length = v2_http.encode_response(response, binary)
        if json_length is None:
            return web.Response(body=out, content_type=_JSON)
        return web.Response(
            body=out,
            content_type=_BINARY,
            headers={v2_http.HEADER_LENGTH: str(json_length)},
        )

    model = "/v2/models/{model}"
    versioned = "/v2/models/{model}/versions/{version}"
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/models/stats", all_stats)
    for base in (model, versioned):
        app.router.add_get(base, model_metadata)
        app.router.add_get(f"{base}/ready", model_ready)
        app.router.add_get(f"{base}/config", model_config)
        app.router.add_get(f"{base}/stats", model_stats)
        app.router.add_post(f"{base}/infer", infer)
    return app


def _header_length(request: web.Request) -> int | None:
    value = request.headers.get(v2_http.HEADER_LENGTH)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InferError(
            Code.INVALID_ARGUMENT, f"{v2_http.HEADER_LENGTH} must be an integer, got '{value}'"
        ) from None


TIMEOUT_HEADER = "Inference-Timeout-Ms"


def _timeout_header(request: web.Request) -> float | None:
    """The caller's timeout from the Inference-Timeout-Ms header, in seconds."""
    value = request.headers.get(TIMEOUT_HEADER)
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        ms = -1.0
    if not ms > 0:
        raise InferError(
            Code.INVALID_ARGUMENT, f"{TIMEOUT_HEADER} must be a positive number, got '{value}'"
        )
    return ms / 1000
