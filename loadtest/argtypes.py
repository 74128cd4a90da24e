"""argparse types shared by the ``loadtest`` sub-commands: bounded numbers, lists, choices."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "COUNT",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_INT",
    "choice_list",
    "name_pid",
    "number",
    "number_list",
]


def _bounded(kind: Callable[[str], Any], text: str, low: float, strict: bool) -> Any:
    try:
        value = kind(text)
    except ValueError:
        name = getattr(kind, "__name__", "number")
        raise argparse.ArgumentTypeError(f"not a valid {name}: {text!r}") from None
    if not (value > low if strict else value >= low):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}, got {text}")
    return value


def number(kind: Callable[[str], Any], low: float = 0.0, *, strict: bool) -> Callable[[str], Any]:
    """A ``kind`` number above ``low`` (``strict``) or at least ``low``."""
    return lambda text: _bounded(kind, text, low, strict)


def number_list(
    kind: Callable[[str], Any], low: float = 0.0, *, strict: bool, sort: bool = True
) -> Callable[[str], tuple[Any, ...]]:
    """A comma-separated, non-empty list of bounded ``kind`` numbers (sorted unless told not)."""

    def parse(text: str) -> tuple[Any, ...]:
        values = [_bounded(kind, v.strip(), low, strict) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected a list a,b,..., got {text!r}")
        return tuple(sorted(values) if sort else values)

    return parse


def name_pid(text: str) -> tuple[str, int]:
    """``NAME=PID``: a process to watch, by the name reports give it."""
    name, sep, pid = text.partition("=")
    if not sep or not name or not pid.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PID, got {text!r}")
    return name, int(pid)


def choice_list(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated, non-empty list drawn from ``allowed``, in the order given."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(i.strip() for i in text.split(",") if i.strip())
        if not items or any(i not in allowed for i in items):
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}, got {text!r}")
        return items

    return parse


POSITIVE_INT = number(int, 1, strict=False)
COUNT = number(int, 0, strict=False)
POSITIVE = number(float, 0, strict=True)
NON_NEGATIVE = number(float, 0, strict=False)
