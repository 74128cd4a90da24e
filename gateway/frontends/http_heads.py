"""What a request head says about the body that follows, or why it is refused: the framing
rules of RFC 9112 and the body limit, as a pure function of the parsed head."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.frontends.http_limits import decimal

__all__ = ["CHUNKED", "Refusal", "body_framing", "too_large"]

CHUNKED = -1  # the body's length when it is chunked


@dataclass(frozen=True, slots=True)
class Refusal:
    """A head that ends the stream: answered ``status`` with ``message``, then closed."""

    status: int
    message: str


def body_framing(headers: dict[str, str], hosts: int, http10: bool, max_body: int) -> int | Refusal:
    """The body's length (CHUNKED when chunked, 0 when none) of a request with ``headers``
    (by lower-case name) and ``hosts`` Host fields, or why it is refused."""
    chunked = "transfer-encoding" in headers  # llhttp refuses any other final coding
    if http10 and chunked:  # RFC 9112 §6.1: faulty framing
        return Refusal(400, "Transfer-Encoding is not defined for HTTP/1.0 (RFC 9112 §6.1)")
    if not http10 and hosts != 1:
        return Refusal(
            400,
            "an HTTP/1.1 request must carry exactly one Host header (RFC 9112 §3.2), "
            f"this one carries {hosts}",
        )
    if chunked:
        return CHUNKED
    value = headers.get("content-length")
    if value is None:
        return 0
    length = decimal(value)
    if length is None:
        return Refusal(400, f"Content-Length must be a number of bytes, got '{value}'")
    if length > max_body:  # refused before the body is read
        return too_large(length, max_body)
    return length


def too_large(size: int, max_body: int) -> Refusal:
    return Refusal(413, f"request body is too large: {size} bytes > {max_body}")
