"""Where the parts of a request end in the byte stream, so that size limits count bytes as
they arrive.

httptools (llhttp) is the authority on syntax, but it keeps an unfinished header line (or a
chunk extension) to itself until the line ends: a client can send megabytes of one line and no
callback ever sees them. The connection therefore cuts what it receives at the boundaries this
framer finds — the end of a head, of a body, of each chunk-size line, of the trailers — feeds
the parser one part at a time, and the framer counts each part's bytes against its limit
before the parser sees them. The connection tells it what the parser found (``body``,
``chunked``, ``message_done``); cutting elsewhere than the parser would only move the counts,
never the parse. What a client that does not pipeline sends — one request per read, or more of
its body — goes to the parser whole (``whole``), uncut.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["Framer", "FramingError"]

_END_OF_HEAD = b"\r\n\r\n"
_END_OF_LINE = b"\r\n"
_HEX = re.compile(rb"[0-9A-Fa-f]+")


class FramingError(Exception):
    """A part over its limit: answered ``status`` with ``message``, then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Part(Enum):
    HEAD = "head"  # request line and headers, up to the empty line
    BODY = "body"  # Content-Length bytes
    CHUNK_LINE = "chunk_line"  # a chunk's size and extensions, up to CRLF
    CHUNK_DATA = "chunk_data"  # a chunk's data and its CRLF
    TRAILERS = "trailers"  # after the last chunk, up to the empty line


class Framer:
    """Cuts a request stream into parts; ``split`` says where the current part ends."""

    def __init__(self, max_head: int, max_chunk_line: int) -> None:
        self._max_head = max_head
        self._max_line = max_chunk_line
        self._part = _Part.HEAD
        self._count = 0  # bytes of the current head, chunk line or trailers so far
        self._tail = b""  # their last bytes: an end marker may straddle two reads
        self._left = 0  # bytes of body or chunk data still to come
        self._line = b""  # the start of a chunk-size line: its size
        self._fed = 0  # body bytes fed with their head at once (``whole``)

    def message_done(self) -> None:
        """The parser has completed a message: a head comes next."""
        self._enter(_Part.HEAD)

    def body(self, length: int) -> None:
        """The head ended with a body of ``length`` bytes."""
        self._part = _Part.BODY
        self._left = length - self._fed
        self._fed = 0

    def chunked(self) -> None:
        """The head ended with a chunked body."""
        self._enter(_Part.CHUNK_LINE)

    def _enter(self, part: _Part, tail: bytes = b"") -> None:
        self._part = part
        self._count = 0
        self._tail = tail
        self._line = b""

    def whole(self, data: bytes) -> bool:
        """Whether ``data`` may go to the parser at once, counted here: the rest of a body, or
        one request's whole head with no body or (part of) a Content-Length body, nothing after
        it — what a client that does not pipeline sends. Else ``split`` cuts it."""
        part = self._part
        if part is _Part.BODY:
            if self._left < len(data):
                return False
            self._left -= len(data)
            return True
        if part is not _Part.HEAD or self._count or self._tail:
            return False
        at = data.find(_END_OF_HEAD)
        if at < 0 or at + 4 > self._max_head:
            return False
        head = data[:at].lower()
        body = len(data) - at - 4
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            return body == 0 and b"\r\ntransfer-encoding:" not in head
        end = head.find(b"\r", start + 17)
        length = head[start + 17 : end if end >= 0 else len(head)].strip(b" \t")
        if not length.isdigit() or body > int(length) or b"\r\ntransfer-encoding:" in head:
            return False
        self._fed = body  # the parser says the length in ``body``: the rest is what is left
        return True

    def split(self, data: bytes, start: int) -> int:
        """Where the current part ends in ``data[start:]`` (``len(data)`` when it goes on in the
        next read); raises FramingError when the part is over its limit."""
        part = self._part
        if part is _Part.HEAD and not self._tail:  # the common case: a head read whole
            at = data.find(_END_OF_HEAD, start)
            if at >= 0 and self._count + at + 4 - start <= self._max_head:
                self._count += at + 4 - start
                return at + 4
        if (part is _Part.BODY and self._left) or part is _Part.CHUNK_DATA:
            n = min(self._left, len(data) - start)
            self._left -= n
            if part is _Part.CHUNK_DATA and not self._left:
                self._enter(_Part.CHUNK_LINE)
            return start + n
        if part is _Part.CHUNK_LINE:
            end, ended = self._scan(data, start, _END_OF_LINE)
            if len(self._line) < 32:
                self._line += data[start : min(end, start + 32)]
            if self._count > self._max_line:
                raise FramingError(400, f"a chunk-size line is over {self._max_line} bytes")
            if ended:
                size = _HEX.match(self._line)
                if size is None or int(size.group(), 16) == 0:
                    self._enter(_Part.TRAILERS, _END_OF_LINE)  # CRLF at once ends the body
                else:
                    self._part = _Part.CHUNK_DATA
                    self._left = int(size.group(), 16) + 2  # the data, then CRLF
            return end
        # a head, the trailers, or a body's end (the parser saw no message: empty lines)
        if part is _Part.BODY:
            self._enter(_Part.HEAD)
        end, _ = self._scan(data, start, _END_OF_HEAD)
        if self._count > self._max_head:
            what = "trailers are" if part is _Part.TRAILERS else "request line and headers are"
            raise FramingError(431, f"{what} over {self._max_head} bytes")
        return end

    def _scan(self, data: bytes, start: int, marker: bytes) -> tuple[int, bool]:
        """Where ``marker`` ends in the stream from ``start`` on (or ``len(data)``), and whether
        it was found; counts the bytes up to there."""
        tail = self._tail
        at = (tail + data[start : start + len(marker) - 1]).find(marker) if tail else -1
        if at >= 0:
            end = start + at + len(marker) - len(tail)
        else:
            at = data.find(marker, start)
            end = at + len(marker) if at >= 0 else len(data)
        self._count += end - start
        if at >= 0:
            self._tail = b""
            return end, True
        keep = len(marker) - 1
        self._tail = (tail + data[start:])[-keep:] if len(data) - start < keep else data[-keep:]
        return end, False
