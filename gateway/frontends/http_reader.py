"""A request as httptools reads it: the parser's callbacks gather one request's head and body.

Header names are lower-cased, repeated fields joined with ", ", trailing whitespace trimmed;
the trailers of a chunked body are dropped, never read as headers. Once the head is in, its
framing (``http_heads.body_framing``) tells the framer what follows, or refuses the request;
a chunked body is refused once it passes the limit. The connection that owns the reader hears
of each step.
"""

from __future__ import annotations

from typing import Protocol

import httptools

from gateway.frontends.http_framing import Framer
from gateway.frontends.http_heads import CHUNKED, Refusal, body_framing, too_large
from gateway.frontends.http_types import Request

__all__ = ["Owner", "RequestReader"]

_OWS = (" ", "\t")


class Owner(Protocol):
    """What a reader tells (the connection): ``parsing`` False ignores what is still read."""

    parsing: bool
    continue_owed: bool

    def message_began(self) -> None: ...

    def head_read(self, expects_continue: bool, length: int) -> None: ...

    def body_grew(self, n: int) -> bool: ...

    def request_read(self, request: Request, http10_keep_alive: bool) -> None: ...

    def refuse(self, refusal: Refusal) -> None: ...


class RequestReader:
    """The httptools callbacks of one connection; ``parser`` is fed what it receives."""

    def __init__(self, owner: Owner, framer: Framer, max_body: int) -> None:
        self._owner = owner
        self._framer = framer
        self._max_body = max_body
        self.parser = httptools.HttpRequestParser(self)
        self._http10 = False
        self._begin()

    def _begin(self) -> None:
        self._url = b""
        self._headers: dict[str, str] = {}
        self._hosts = 0
        self._in_head = True
        self._chunks: list[bytes] = []
        self._size = 0
        self._chunked = False

    def on_message_begin(self) -> None:
        self._begin()
        self._owner.message_began()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer of a chunked body: never read as a header
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if text[-1:] in _OWS:
            text = text.rstrip(" \t")
        if key == "host":
            self._hosts += 1
        headers = self._headers
        headers[key] = text if key not in headers else f"{headers[key]}, {text}"

    def on_headers_complete(self) -> None:
        self._in_head = False
        headers = self._headers
        self._http10 = http10 = self.parser.get_http_version() == "1.0"
        length = body_framing(headers, self._hosts, http10, self._max_body)
        if isinstance(length, Refusal):
            self._owner.refuse(length)
            return
        self._chunked = length == CHUNKED
        if self._chunked:
            self._framer.chunked()
        else:
            self._framer.body(length)
        expect = headers.get("expect")
        self._owner.head_read(expect is not None and expect.lower() == "100-continue", length)

    def on_body(self, body: bytes) -> None:
        owner = self._owner
        if not owner.parsing:
            return
        owner.continue_owed = False  # the client sends without waiting for it
        self._size += len(body)
        if self._size > self._max_body:  # a chunked body growing past the limit
            owner.refuse(too_large(self._size, self._max_body))
            return
        if self._chunked and not owner.body_grew(len(body)):
            return  # the memory budget is full: the owner refused the request
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if not self._owner.parsing:
            return
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        chunks = self._chunks
        request = Request(
            parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1").partition("?")[0],
            self._headers,
            chunks[0] if len(chunks) == 1 else b"".join(chunks),
            keep_alive,
        )
        self._framer.message_done()
        self._owner.request_read(request, keep_alive and self._http10)
