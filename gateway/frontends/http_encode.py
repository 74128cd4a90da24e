"""Response heads as the REST server writes them: status line, Date, Server, framing."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

from gateway.frontends.http_types import Response

__all__ = ["CONTINUE", "encode_head"]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n".encode()


_STATUS_LINES = {s.value: _status_line(s.value) for s in HTTPStatus}


class _DateLines:
    """The Date and Server headers; Date is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._lines = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            date = formatdate(now, usegmt=True)
            self._lines = f"Date: {date}\r\nServer: inference-gateway\r\n".encode()
        return self._lines


_DATE_LINES = _DateLines()


def encode_head(response: Response, close: bool, keep_alive_10: bool = False) -> bytes:
    """A response's status line and headers, up to the empty line. ``close``: the connection
    closes after it; ``keep_alive_10``: an HTTP/1.0 request asked to keep it open."""
    head = [
        _STATUS_LINES.get(response.status) or _status_line(response.status),
        _DATE_LINES.get(),
        b"Content-Length: %d\r\n" % len(response.body),
    ]
    if response.content_type is not None:
        head.append(f"Content-Type: {response.content_type}\r\n".encode())
    for name, value in response.headers:
        head.append(f"{name}: {value}\r\n".encode("latin-1"))
    if close:
        head.append(b"Connection: close\r\n")
    elif keep_alive_10:  # HTTP/1.0 closes unless told otherwise
        head.append(b"Connection: keep-alive\r\n")
    head.append(b"\r\n")
    return b"".join(head)
