"""Which REST paths go without a key: route templates matched as the REST router matches them.

A path is split on ``/`` as sent, then each segment is percent-decoded once (as
``gateway.frontends.http_router`` does); ``{model}`` and ``{version}`` match one non-empty
segment holding no ``/``. A listed model path ``/v2/models/{model}...`` (or one naming a model)
opens its versioned form ``/v2/models/{model}/versions/{version}...`` too. A path the router
serves as a literal route (``/v2/models/stats``, every model's statistics) is open only when
listed literally: the template ``/v2/models/{model}`` does not open it.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

__all__ = ["OpenPaths"]

_PLACEHOLDERS = ("{model}", "{version}")
_MODELS = ("", "v2", "models")
# The router's literal routes that a template would also match (see gateway.frontends.rest).
_LITERAL_ROUTES = frozenset({("", "v2", "models", "stats")})

_Template = tuple[str | None, ...]  # None: a placeholder


def _compile(template: str) -> _Template:
    return tuple(None if s in _PLACEHOLDERS else s for s in template.split("/"))


def _forms(template: str) -> list[str]:
    """The template and, for a model path, its versioned form."""
    parts = template.split("/")
    model_path = len(parts) >= 4 and tuple(parts[:3]) == _MODELS and parts[3] != "{version}"
    if not model_path or tuple(parts) in _LITERAL_ROUTES or parts[4:5] == ["versions"]:
        return [template]
    return [template, "/".join([*parts[:4], "versions", "{version}", *parts[4:]])]


def _segments(path: str) -> tuple[str, ...]:
    path = path.split("?", 1)[0]
    parts = path.split("/")
    return tuple(unquote(p) for p in parts) if "%" in path else tuple(parts)


class OpenPaths:
    """The open route templates of ``auth.open_paths``, ready to match raw request paths."""

    def __init__(self, templates: Iterable[str]) -> None:
        self.listed = frozenset(templates)
        self._literals: set[tuple[str, ...]] = set()
        self._by_length: dict[int, list[_Template]] = {}
        for template in self.listed:
            for form in _forms(template):
                compiled = _compile(form)
                if None not in compiled:
                    self._literals.add(tuple(s for s in compiled if s is not None))
                else:
                    self._by_length.setdefault(len(compiled), []).append(compiled)

    def matches(self, path: str) -> bool:
        """Whether the raw (percent-encoded) path is one of the open routes."""
        segments = _segments(path)
        if segments in self._literals:
            return True
        if segments in _LITERAL_ROUTES:
            return False
        for template in self._by_length.get(len(segments), ()):
            if all(
                segment == want if want is not None else bool(segment) and "/" not in segment
                for segment, want in zip(segments, template, strict=True)
            ):
                return True
        return False
