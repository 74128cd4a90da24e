"""Protobuf messages as Triton's REST API prints them: snake_case, defaults, int64 as numbers."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict

__all__ = ["message_to_dict", "message_to_json"]


def message_to_dict(message: Any) -> dict[str, Any]:
    """A message as a dict: field names as in the .proto, every field printed, int64 numbers."""
    return MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )


def message_to_json(message: Any) -> bytes:
    """A message as JSON bytes (see message_to_dict)."""
    return orjson.dumps(message_to_dict(message))
