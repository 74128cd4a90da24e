"""PATCH bodies as the API server applies them: JSON merge patch (RFC 7386), strategic merge
patch (here: as a merge patch, enough for the scale and status fields the project patches) and
JSON patch (RFC 6902: add, replace, remove, test)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PATCH_TYPES", "UnsupportedMediaType", "apply_patch", "merge_patch"]

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (MERGE, STRATEGIC, JSON_PATCH)


class UnsupportedMediaType(Exception):
    """A PATCH whose Content-Type is none of the patch types (HTTP 415)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = op["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, op["value"])
            elif kind == "replace":
                node[index] = op["value"]
            elif kind == "remove":
                del node[index]
            elif kind == "test" and node[index] != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif kind in ("add", "replace"):
            if kind == "replace" and last not in node:
                raise ValueError(f"no {op['path']} to replace")
            node[last] = op["value"]
        elif kind == "remove":
            del node[last]
        elif kind == "test" and node.get(last) != op["value"]:
            raise ValueError(f"test failed at {op['path']}")
    return doc


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """``target`` with ``patch`` applied the way ``content_type`` says."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise ValueError("a JSON patch is a list of operations")
        result = _json_patch(target, patch)
    elif content_type in (MERGE, STRATEGIC):
        result = merge_patch(target, patch)
    else:
        raise UnsupportedMediaType(
            f"the body of the request was in an unknown format: {content_type}"
        )
    if not isinstance(result, dict):
        raise ValueError("the patch must leave an object")
    return result
