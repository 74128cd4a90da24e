"""How the gRPC front-end's failures reach the caller: status details that fit a client's
metadata limit, the abort carrying them, and requests that do not parse as INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from gateway.errors import InferError, as_infer_error
from gateway.observe.request import REQUEST_ID_HEADER
from protos import v2_grpc
from protos.tensors import CodecError

__all__ = ["GRPC_REQUEST_ID", "MAX_DETAIL_BYTES", "abort", "parsing", "status_detail"]

MAX_DETAIL_BYTES = 4096
"""The most bytes a status detail takes as gRPC sends it. A client refuses trailing metadata
past its limit (grpc.max_metadata_size: 8 KiB soft, 16 KiB hard by default) with
RESOURCE_EXHAUSTED, and the status is lost; this leaves room for the other trailers."""

_MARKER_ROOM = 48  # "… (N characters cut)" percent-encoded, N up to 2**63
GRPC_REQUEST_ID = REQUEST_ID_HEADER.lower()
"""The request id's metadata key: gRPC metadata keys are lower case."""

Rpc = Callable[[Any, Any], Awaitable[Any]]


def _wire_bytes(char: str) -> int:
    """What ``char`` takes in the ``grpc-message`` trailer: printable ASCII but ``%`` as is,
    each UTF-8 byte of anything else percent-encoded (three)."""
    if " " <= char <= "~" and char != "%":
        return 1
    return 3 * len(char.encode("utf-8", "surrogatepass"))


def status_detail(message: str, limit: int = MAX_DETAIL_BYTES) -> str:
    """``message`` as a status detail taking at most ``limit`` bytes on the wire: whole when
    it fits, else cut on a character boundary and marked with how many characters were cut.
    Reads no more of a long message than ``limit`` characters."""
    if 3 * 4 * len(message) <= limit:  # fits whatever it holds: the common, short message
        return message
    used, cut = 0, 0
    for i, char in enumerate(message):
        used += _wire_bytes(char)
        if used <= limit - _MARKER_ROOM:
            cut = i + 1
        elif used > limit:
            return f"{message[:cut]}… ({len(message) - cut} characters cut)"
    return message


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], exc: InferError, request_id: str = ""
) -> NoReturn:
    """End the call with ``exc``'s status and its message (``status_detail``); a
    ``retry-after`` trailer when it has one, the request id as ``x-request-id`` when given."""
    trailing: tuple[tuple[str, str], ...] = ()
    if exc.retry_after_s is not None:
        trailing = (("retry-after", str(max(1, round(exc.retry_after_s)))),)
    if request_id:
        trailing = (*trailing, (GRPC_REQUEST_ID, request_id))
    if trailing:
        context.set_trailing_metadata(trailing)
    await context.abort(exc.code.grpc_code, status_detail(exc.message))
    raise AssertionError("unreachable")  # abort raises


def parsing(rpc: Rpc, request_type: type[Message]) -> Callable[[bytes, Any], Awaitable[Any]]:
    """A unary ``rpc`` taking its request as bytes (registered with no deserializer), parsed
    here as ``request_type``: bytes that are not one are INVALID_ARGUMENT naming the type and
    the reason (grpcio's own deserializer answers UNKNOWN and logs a traceback)."""

    async def handler(raw: bytes, context: Any) -> Any:
        try:
            request = v2_grpc.message_from_bytes(raw, request_type)
        except CodecError as exc:
            await abort(context, as_infer_error(exc))
        return await rpc(request, context)

    return handler
