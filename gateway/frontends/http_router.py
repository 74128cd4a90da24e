"""The REST route table: method and path to a handler, routed on the raw path's segments.

A path is split on ``/`` as sent and each segment is then percent-decoded once, so ``%2F`` is
part of a segment (a model named ``a/b`` is ``a%2Fb``), never a separator, and ``%2573`` is the
three characters ``%73``, never ``s``.
"""

from __future__ import annotations

from urllib.parse import unquote

from gateway.frontends.http_types import Handler

__all__ = ["Router"]

_Route = tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...], dict[str, Handler]]


def _segments(path: str) -> tuple[str, ...]:
    parts = path.split("/")
    if "%" in path:
        return tuple(unquote(p) for p in parts)
    return tuple(parts)


class Router:
    """Routes by method and path; ``{name}`` in a pattern matches one non-empty path segment.

    Literal paths win over patterns; patterns are tried in the order added. GET routes answer
    HEAD too.
    """

    def __init__(self) -> None:
        self._static: dict[tuple[str, ...], dict[str, Handler]] = {}
        self._dynamic: dict[int, list[_Route]] = {}  # by number of segments

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        methods = {method: handler}
        if method == "GET":
            methods["HEAD"] = handler
        parts = pattern.split("/")
        if "{" not in pattern:
            self._static.setdefault(tuple(parts), {}).update(methods)
            return
        literals = tuple((i, p) for i, p in enumerate(parts) if not p.startswith("{"))
        names = tuple((i, p[1:-1]) for i, p in enumerate(parts) if p.startswith("{"))
        routes = self._dynamic.setdefault(len(parts), [])
        for known, known_names, handlers in routes:
            if known == literals and known_names == names:
                handlers.update(methods)
                return
        routes.append((literals, names, methods))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | int:
        """The handler and path parameters for a raw path (no query), or 404 / 405."""
        segments = _segments(path)
        handlers = self._static.get(segments)
        params: dict[str, str] = {}
        if handlers is None:
            for literals, names, candidates in self._dynamic.get(len(segments), ()):
                for i, text in literals:
                    if segments[i] != text:
                        break
                else:
                    for i, name in names:
                        value = segments[i]
                        if not value:
                            break
                        params[name] = value
                    else:
                        handlers = candidates
                        break
                    params = {}
        if handlers is None:
            return 404
        handler = handlers.get(method)
        return 405 if handler is None else (handler, params)
