"""The pod's KServe v2 REST API (aiohttp), with Triton's extensions and ``/metrics``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from loadtest.simpod.engine import Engine
from loadtest.simpod.errors import Code, SimError
from loadtest.simpod.info import EXTENSIONS, SERVER_NAME, server_version
from loadtest.simpod.traces import from_http_headers
from protos import grpc_service_pb2 as pb
from protos.json_format import message_to_json as to_json
from protos.tensors import CodecError
from protos.v2_http import HEADER_LENGTH, decode_request, encode_response, wants_binary

__all__ = ["ENGINE_KEY", "build_app"]

ENGINE_KEY = web.AppKey("engine", Engine)
log = logging.getLogger("simpod")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json(orjson.dumps({"error": message}), status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as ``{"error": "..."}`` with Triton's status for its kind."""
    try:
        return await handler(request)
    except SimError as exc:
        return _error(exc.code.http, exc.message)
    except CodecError as exc:
        return _error(Code.INVALID_ARGUMENT.http, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception as exc:  # a bug: answer 500 rather than drop the connection
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(Code.INTERNAL.http, f"internal error: {exc}")


def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE_KEY]


def _model_args(request: web.Request) -> tuple[str, str]:
    return request.match_info["model"], request.match_info.get("version", "")


def _status(ok: bool) -> web.Response:
    return web.Response(status=200 if ok else 400)


async def live(request: web.Request) -> web.Response:
    return _status(True)


async def ready(request: web.Request) -> web.Response:
    return _status(_engine(request).ready)


async def server_metadata(request: web.Request) -> web.Response:
    doc = {"name": SERVER_NAME, "version": server_version(), "extensions": EXTENSIONS}
    return _json(orjson.dumps(doc))


async def model_metadata(request: web.Request) -> web.Response:
    return _json(to_json(_engine(request).model(*_model_args(request)).metadata()))


async def model_ready(request: web.Request) -> web.Response:
    return _status(_engine(request).model_ready(*_model_args(request)))


async def model_config(request: web.Request) -> web.Response:
    engine = _engine(request)
    return _json(to_json(engine.model(*_model_args(request)).config(engine.devices)))


async def model_stats(request: web.Request) -> web.Response:
    engine = _engine(request)
    if "model" in request.match_info:
        names = [engine.model(*_model_args(request)).name]
    else:
        names = sorted(engine.models)
    msg = pb.ModelStatisticsResponse(model_stats=[engine.stats[n].message() for n in names])
    return _json(to_json(msg))


def _header_length(request: web.Request) -> int | None:
    value = request.headers.get(HEADER_LENGTH)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise SimError.invalid(f"{HEADER_LENGTH} must be an integer, got '{value}'") from None


async def infer(request: web.Request) -> web.Response:
    engine = _engine(request)
    name, version = _model_args(request)
    traceparent, tracestate = from_http_headers(request.headers)
    engine.traces.record(traceparent, tracestate, model=name, protocol="http")
    engine.model(name, version)  # unknown model: 404 before reading the body
    body = decode_request(await request.read(), _header_length(request))
    response = await engine.infer(name, version, body)
    binary = [wants_binary(body, t.name) for t in response.outputs]
    data, json_length = encode_response(response, binary)
    if json_length is None:
        return _json(data)
    out = web.Response(body=data, content_type="application/octet-stream")
    out.headers[HEADER_LENGTH] = str(json_length)
    return out


async def faults(request: web.Request) -> web.Response:
    """The failure injection rates; PUT changes them while the pod runs (fields left out keep
    their value): ``{"stall_rate": 1}`` stalls every batch from then on."""
    engine = _engine(request)
    if request.method == "PUT":
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise SimError.invalid(f"the body is not JSON: {exc}") from None
        names = {f.name for f in dataclasses.fields(engine.faults)}
        if not isinstance(doc, dict) or not set(doc) <= names:
            raise SimError.invalid(f"the body must be an object of {sorted(names)}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in doc.values()):
            raise SimError.invalid("every rate must be a number")
        try:
            engine.faults = dataclasses.replace(engine.faults, **doc)
        except ValueError as exc:
            raise SimError.invalid(str(exc)) from None
        log.info("faults now %s", engine.faults)
    return _json(orjson.dumps(dataclasses.asdict(engine.faults)))


async def traceparents(request: web.Request) -> web.Response:
    """The trace context of the recent inference calls that carried one, oldest first."""
    return _json(orjson.dumps({"traceparents": _engine(request).traces.recent()}))


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=_engine(request).metrics.render(), headers={"Content-Type": _PROMETHEUS}
    )


def build_app(engine: Engine) -> web.Application:
    """The aiohttp application serving ``engine``."""
    app = web.Application(middlewares=[_errors], client_max_size=2**31 - 1)
    app[ENGINE_KEY] = engine
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/models/stats", model_stats)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/faults", faults)
    app.router.add_put("/faults", faults)
    app.router.add_get("/sim/traceparents", traceparents)
    for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        app.router.add_get(base, model_metadata)
        app.router.add_get(f"{base}/ready", model_ready)
        app.router.add_get(f"{base}/config", model_config)
        app.router.add_get(f"{base}/stats", model_stats)
        app.router.add_post(f"{base}/infer", infer)
    return app
