"""Protobuf messages as Triton's REST API prints them: snake_case, defaults, int64 as numbers."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict

__all__ = ["message_to_dict"]

_WIDE = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)


def message_to_dict(message: Any) -> dict[str, Any]:
    """A message as a dict of field names as in the .proto, every field printed."""
    doc = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _numbers(message.DESCRIPTOR, doc)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _numbers(desc: Descriptor, doc: dict[str, Any]) -> dict[str, Any]:
    """Turn the strings protobuf's JSON mapping writes for 64-bit integers back into numbers."""
    for field in desc.fields:
        if field.name not in doc:
            continue
        value = doc[field.name]
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            inner = sub.fields_by_name["value"]
            if inner.message_type is not None:
                doc[field.name] = {k: _numbers(inner.message_type, v) for k, v in value.items()}
            elif inner.cpp_type in _WIDE:
                doc[field.name] = {k: int(v) for k, v in value.items()}
        elif sub is not None:
            if _is_repeated(field):
                doc[field.name] = [_numbers(sub, v) for v in value]
            else:
                doc[field.name] = _numbers(sub, value)
        elif field.cpp_type in _WIDE:
            doc[field.name] = [int(v) for v in value] if _is_repeated(field) else int(value)
    return doc
