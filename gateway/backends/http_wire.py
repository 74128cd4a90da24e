"""HTTP/1.1 as the gateway speaks it to a pod: a request's head, and an answer read as its bytes
arrive (``Content-Length`` or chunked). Pure: bytes in, bytes out, no I/O.

Just enough of RFC 9112 for v2 servers (Triton, KServe, MLServer, the simulated pod): answers
of any length, framed by ``Content-Length`` or chunked, kept alive unless a side says
``Connection: close``; an answer without framing (read to close) or with a malformed head is an
``HttpWireError``, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import Code

__all__ = ["HttpReply", "HttpWireError", "ReplyReader", "code_of_status", "request_head"]

_MAX_HEAD = 64 * 1024  # an answer's status line and headers
_MAX_CHUNK_LINE = 1024
INFERENCE_HEADER = b"inference-header-content-length"
_CODES = {
    400: Code.INVALID_ARGUMENT,
    401: Code.INTERNAL,  # the pod refused the gateway's own credentials: not the caller's fault
    403: Code.INTERNAL,
    404: Code.NOT_FOUND,
    413: Code.PAYLOAD_TOO_LARGE,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


class HttpWireError(Exception):
    """The pod's bytes are not an HTTP/1.1 answer this client can read."""


def code_of_status(status: int) -> Code:
    """The failure kind of a pod's HTTP status (Triton's mapping; other 4xx: the request's
    fault, other 5xx: the pod's)."""
    return _CODES.get(status) or (Code.INVALID_ARGUMENT if status < 500 else Code.INTERNAL)


def request_head(
    method: str, target: str, host: str, body_length: int, headers: tuple[str, ...] = ()
) -> bytes:
    """A request's head: request line, Host, the extra ``headers`` lines, Content-Length."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    if body_length or method == "POST":
        lines.append(f"Content-Length: {body_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A whole answer: status, body, the v2 binary extension's JSON length (if sent)."""

    status: int
    body: bytes
    header_length: int | None = None
    keep_alive: bool = True


class ReplyReader:
    """One answer, fed its bytes as they arrive; ``feed`` returns it once whole."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._status = 0
        self._header_length: int | None = None
        self._keep_alive = True
        self._length = -1  # the body's length (Content-Length), once the head is read
        self._chunked = False
        self._chunks: list[bytes] = []
        self._head_done = False
        self.extra = False  # bytes came after the answer (the connection cannot be reused)

    @property
    def started(self) -> bool:
        """Whether any byte of the answer has arrived."""
        return self._head_done or bool(self._buf)

    def feed(self, data: bytes) -> HttpReply | None:
        if not self._buf and not self._head_done:  # the usual case: the answer in one piece
            end = data.find(b"\r\n\r\n")
            if 0 <= end <= _MAX_HEAD:
                self._read_head(data[:end])
                self._head_done = True
                body_at = end + 4
                if not self._chunked and len(data) - body_at >= self._length:
                    self.extra = len(data) - body_at > self._length
                    return self._reply(data[body_at : body_at + self._length])
                data = data[body_at:]
        self._buf += data
        if not self._head_done:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    raise HttpWireError(f"the answer's head is over {_MAX_HEAD} bytes")
                return None
            self._read_head(bytes(self._buf[:end]))
            del self._buf[: end + 4]
            self._head_done = True
        if self._chunked:
            return self._read_chunks()
        if len(self._buf) < self._length:
            return None
        self.extra = len(self._buf) > self._length
        return self._reply(bytes(self._buf[: self._length]))

    def _reply(self, body: bytes) -> HttpReply:
        return HttpReply(self._status, body, self._header_length, self._keep_alive)

    def _read_head(self, head: bytes) -> None:
        status_line, *lines = head.split(b"\r\n")
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise HttpWireError(f"bad status line {status_line[:60]!r}")
        try:
            self._status = int(status_line[9:12])
        except ValueError:
            raise HttpWireError(f"bad status line {status_line[:60]!r}") from None
        self._keep_alive = status_line[5:8] == b"1.1"
        length: int | None = None
        for line in lines:
            name, sep, value = line.partition(b":")
            if not sep:
                raise HttpWireError(f"bad header line {line[:60]!r}")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                length = _number(value, "Content-Length")
            elif name == INFERENCE_HEADER:
                self._header_length = _number(value, "Inference-Header-Content-Length")
            elif name == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    self._keep_alive = False
                elif b"keep-alive" in tokens:
                    self._keep_alive = True
            elif name == b"transfer-encoding":
                if value.lower().split(b",")[-1].strip() != b"chunked":
                    raise HttpWireError(f"unsupported Transfer-Encoding {value[:40]!r}")
                self._chunked = True
        if self._chunked:
            return
        if length is None:
            if self._status in (204, 304) or 100 <= self._status < 200:
                length = 0
            else:
                raise HttpWireError("the answer has neither Content-Length nor chunked framing")
        self._length = length

    def _read_chunks(self) -> HttpReply | None:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > _MAX_CHUNK_LINE:
                    raise HttpWireError("a chunk size line is too long")
                return None
            size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpWireError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:  # the last chunk: trailer lines (ignored), then an empty line
                rest = end + 2
                if buf[rest : rest + 2] == b"\r\n":
                    done = rest + 2
                else:
                    trailers = buf.find(b"\r\n\r\n", rest)
                    if trailers < 0:
                        if len(buf) - rest > _MAX_HEAD:
                            raise HttpWireError(f"the answer's trailers are over {_MAX_HEAD} bytes")
                        return None
                    done = trailers + 4
                self.extra = len(buf) > done
                return self._reply(b"".join(self._chunks))
            if len(buf) < end + 2 + size + 2:
                return None
            start = end + 2
            if buf[start + size : start + size + 2] != b"\r\n":
                raise HttpWireError("a chunk does not end with CRLF")
            self._chunks.append(bytes(buf[start : start + size]))
            del buf[: start + size + 2]


def _number(value: bytes, what: str) -> int:
    if not value.isdigit():
        raise HttpWireError(f"bad {what} {value[:20]!r}")
    return int(value)
