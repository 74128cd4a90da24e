"""The v2 REST front-end: health, metadata, config, statistics and inference.

Served by ``gateway.frontends.http_server`` (httptools), whose route table this module fills.
"""

from __future__ import annotations

import re

from gateway.core import Gateway
from gateway.errors import Code, InferError, as_infer_error
from gateway.frontends.http_limits import decimal
from gateway.frontends.http_server import Request, Response, Router, json_response
from gateway.frontends.http_types import Handler
from gateway.observe.request import REQUEST_ID_HEADER, RequestInfo, checked_request_id
from gateway.routing.forward import FORWARDED_HEADER
from gateway.tenants.directory import Tenant
from protos import v2_http
from protos.heads import DecodeLimits
from protos.json_format import message_to_dict
from protos.tensors import CodecError

__all__ = ["TIMEOUT_HEADER", "build_router", "error_response", "on_error"]

_BINARY = "application/octet-stream"
_JSON = "application/json"
_HEADER_LENGTH = v2_http.HEADER_LENGTH.lower()  # request headers are keyed in lower case
_REQUEST_ID = REQUEST_ID_HEADER.lower()
_FORWARDED = FORWARDED_HEADER.lower()
_SPAN = "POST /v2/models/{model}/infer"
_INFER = _SPAN[5:]  # the route, as the open paths name routes
_SPAN_ATTRS = {"http.request.method": "POST", "http.route": _SPAN[5:]}


def error_response(exc: InferError, request_id: str = "") -> Response:
    """An error as Triton writes it: the status for its kind and {"error": message}."""
    headers: tuple[tuple[str, str], ...] = ()
    if exc.retry_after_s is not None:
        headers = (("Retry-After", str(max(1, round(exc.retry_after_s)))),)
    if request_id:
        headers = (*headers, (REQUEST_ID_HEADER, request_id))
    if exc.code is Code.UNAUTHENTICATED:
        headers = (*headers, ("WWW-Authenticate", 'Bearer realm="inference"'))
    return json_response({"error": exc.message}, exc.code.http_status, headers)


def on_error(_: Request, exc: BaseException) -> Response | None:
    """Every failure as a JSON error with its status; bad input is never a 500."""
    if isinstance(exc, InferError | CodecError):
        return error_response(as_infer_error(exc))
    return None


_EMPTY: dict[bool, Response] = {True: Response(200), False: Response(400)}


def _flag(ok: bool) -> Response:
    """Health answers: 200 when true, 400 when false, empty body (clients read the status)."""
    return _EMPTY[ok]


def _names(request: Request) -> tuple[str, str]:
    return request.params["model"], request.params.get("version", "")


def caller(gateway: Gateway, request: Request, route: str) -> Tenant | None:
    """The tenant calling ``route`` (its pattern): None when no tenants are configured or the
    route is open; else its key is checked (401) and the path's model authorized (403)."""
    tenants = gateway.tenants
    if not tenants.enabled or tenants.is_open(request.method, route):
        return None
    tenant = tenants.identify(request.headers.get("authorization"))
    model = request.params.get("model")
    if model is not None:
        tenants.authorize(tenant, model)
    return tenant


def build_router(gateway: Gateway) -> Router:
    """The REST routes over ``gateway``; with tenants configured, each checks its caller."""
    router = Router()

    def add(route: str, handler: Handler) -> None:
        async def guarded(request: Request) -> Response:
            request.tenant = caller(gateway, request, route)
            return await handler(request)

        router.add("GET", route, guarded)

    async def live(_: Request) -> Response:
        return _flag(gateway.live)

    async def ready(_: Request) -> Response:
        return _flag(gateway.ready)

    async def server_metadata(_: Request) -> Response:
        return json_response(message_to_dict(gateway.server_metadata()))

    async def model_ready(request: Request) -> Response:
        return _flag(gateway.model(*_names(request)).ready)

    async def model_metadata(request: Request) -> Response:
        return json_response(message_to_dict(gateway.spec(*_names(request)).metadata()))

    async def model_config(request: Request) -> Response:
        return json_response(message_to_dict(gateway.model(*_names(request)).config()))

    async def model_stats(request: Request) -> Response:
        return json_response(message_to_dict(gateway.statistics(*_names(request))))

    async def all_stats(request: Request) -> Response:
        tenant: Tenant | None = request.tenant
        if tenant is None or tenant.models is None:
            return json_response(message_to_dict(gateway.statistics()))
        stats = gateway.statistics_of([m for m in tenant.models if m in gateway.models])
        return json_response(message_to_dict(stats))

    server = gateway.config.server
    limits = DecodeLimits(server.max_decode_elements, server.max_bytes_items)
    observer = gateway.request_observer

    async def answer(request: Request, info: RequestInfo) -> Response:
        name, version = _names(request)
        runtime = gateway.model(name, version)  # 404 for a model we do not serve, before decoding
        head = v2_http.parse_request(request.body, _header_length(request))
        decoded = runtime.decode(head, limits)  # checked before anything is decoded
        timeout_s = _timeout_header(request)
        response = await gateway.infer("http", name, version, decoded, timeout_s, info)
        binary = [v2_http.wants_binary(decoded, t.name) for t in response.outputs]
        out, json_length = v2_http.encode_response(response, binary)
        request_id = (REQUEST_ID_HEADER, info.request_id)
        if json_length is None:
            return Response(200, out, _JSON, (request_id,))
        return Response(200, out, _BINARY, ((v2_http.HEADER_LENGTH, str(json_length)), request_id))

    async def infer(request: Request) -> Response:
        """An inference request, seen from its arrival to its answer (logs and traces)."""
        headers = request.headers
        info = observer.begin(
            "http", _SPAN, headers.get("traceparent"), headers.get("tracestate"), _SPAN_ATTRS
        )
        try:
            info.given_id = checked_request_id(headers.get(_REQUEST_ID))
            info.forwarded = _FORWARDED in headers
            info.model = request.params["model"]
            info.tenant = caller(gateway, request, _INFER)
            response = await answer(request, info)
        except BaseException as exc:
            error = observer.failed(info, exc)
            if error is None:
                raise
            return error_response(error, info.request_id)
        observer.end(info)
        return response

    model = "/v2/models/{model}"
    versioned = "/v2/models/{model}/versions/{version}"
    add("/v2/health/live", live)
    add("/v2/health/ready", ready)
    add("/v2", server_metadata)
    add("/v2/models/stats", all_stats)
    for base in (model, versioned):  # infer first: routes are tried in order, it is the hot one
        router.add("POST", f"{base}/infer", infer)
    for base in (model, versioned):
        add(base, model_metadata)
        add(f"{base}/ready", model_ready)
        add(f"{base}/config", model_config)
        add(f"{base}/stats", model_stats)
    return router


def _header_length(request: Request) -> int | None:
    value = request.headers.get(_HEADER_LENGTH)
    if value is None:
        return None
    length = decimal(value)
    if length is None:
        raise InferError(
            Code.INVALID_ARGUMENT,
            f"{v2_http.HEADER_LENGTH} must be a number of bytes (digits), got '{value}'",
        )
    return length


TIMEOUT_HEADER = "Inference-Timeout-Ms"
_TIMEOUT_KEY = TIMEOUT_HEADER.lower()
_MS = re.compile(r"[0-9]+(\.[0-9]+)?")  # milliseconds, digits only (optional fraction)


def _timeout_header(request: Request) -> float | None:
    """The caller's timeout from the Inference-Timeout-Ms header, in seconds."""
    value = request.headers.get(_TIMEOUT_KEY)
    if value is None:
        return None
    ms = float(value) if _MS.fullmatch(value) else -1.0  # no float() leniency: 1_0, inf, 1e3
    if not ms > 0:
        raise InferError(
            Code.INVALID_ARGUMENT, f"{TIMEOUT_HEADER} must be a positive number, got '{value}'"
        )
    return ms / 1000
