"""Reading a pod's HTTP/1.1 answer as its bytes arrive, and writing a request's head."""

from __future__ import annotations

import pytest

from gateway.backends.http_wire import (
    HttpReply,
    HttpWireError,
    ReplyReader,
    code_of_status,
    request_head,
)
from gateway.errors import Code


def read(*parts: bytes) -> tuple[HttpReply | None, ReplyReader]:
    """Feed ``parts`` one by one; the answer once whole (every earlier feed gives None)."""
    reader = ReplyReader()
    for part in parts[:-1]:
        assert reader.feed(part) is None
    return reader.feed(parts[-1]), reader


def test_an_answer_framed_by_content_length_is_whole_once_its_body_is() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nInference-Header-Content-Length: 4\r\n\r\n"
    reply, reader = read(head[:7], head[7:], b"{}{}01", b"2345")
    assert reply == HttpReply(200, b"{}{}012345", 4, True)
    assert not reader.extra


def test_a_byte_at_a_time_reads_the_same_answer() -> None:
    data = b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nabc"
    reply, _ = read(*(data[i : i + 1] for i in range(len(data))))
    assert reply == HttpReply(404, b"abc", None, True)


def test_a_chunked_answer_is_joined_and_its_trailers_skipped() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply, reader = read(head, b"4;ext=1\r\nabcd\r\n", b"2\r\nef\r", b"\n0\r\nX-T: 1\r\n", b"\r\n")
    assert reply is not None and reply.body == b"abcdef"
    assert not reader.extra


def test_a_chunked_answer_with_no_trailers_ends_at_the_empty_line() -> None:
    reply, _ = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r", b"\n"
    )
    assert reply is not None and reply.body == b"abc"


def test_connection_close_and_http_1_0_end_the_connection() -> None:
    close, _ = read(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    old, _ = read(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    kept, _ = read(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert close is not None and not close.keep_alive
    assert old is not None and not old.keep_alive
    assert kept is not None and kept.keep_alive


def test_bytes_past_the_answer_are_flagged() -> None:
    _, reader = read(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab")
    assert reader.extra


def test_a_204_needs_no_length() -> None:
    reply, _ = read(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert reply == HttpReply(204, b"", None, True)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"SMTP ready\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\n\r\n", "neither Content-Length nor chunked"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", "does not end with"),
    ],
)
def test_an_answer_that_is_not_http_is_an_error_naming_the_fault(data: bytes, what: str) -> None:
    with pytest.raises(HttpWireError, match=what):
        ReplyReader().feed(data)


def test_an_endless_head_is_an_error_not_unbounded_memory() -> None:
    reader = ReplyReader()
    reader.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(HttpWireError, match="head is over"):
        for _ in range(100):
            reader.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n")


def test_started_tells_whether_any_byte_came() -> None:
    reader = ReplyReader()
    assert not reader.started
    reader.feed(b"HTTP/1.1")
    assert reader.started


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, Code.INVALID_ARGUMENT),
        (404, Code.NOT_FOUND),
        (413, Code.PAYLOAD_TOO_LARGE),
        (429, Code.RESOURCE_EXHAUSTED),
        (499, Code.CANCELLED),
        (500, Code.INTERNAL),
        (503, Code.UNAVAILABLE),
        (504, Code.DEADLINE_EXCEEDED),
        (418, Code.INVALID_ARGUMENT),
        (502, Code.INTERNAL),
    ],
)
def test_a_pod_s_status_maps_to_the_failure_kind_triton_uses(status: int, code: Code) -> None:
    assert code_of_status(status) is code


def test_a_post_s_head_carries_its_length_and_headers() -> None:
    head = request_head("POST", "/v2/models/m/infer", "pod:8000", 12, ("X-A: 1",))
    assert head == (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: pod:8000\r\nX-A: 1\r\n"
        b"Content-Length: 12\r\n\r\n"
    )
    assert (
        request_head("GET", "/v2", "pod:8000", 0) == b"GET /v2 HTTP/1.1\r\nHost: pod:8000\r\n\r\n"
    )
