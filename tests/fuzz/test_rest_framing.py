"""The REST server's framing on any byte stream, over a real socket: every answer it writes is a
well-formed HTTP/1.1 response that is never a 500, the connection ends (no hang) once the
client has sent all and half-closed, and the server still serves a good request afterwards.

The streams are requests built from parts (methods, paths with percent-escapes, versions,
headers with odd Content-Length, Transfer-Encoding, Host and Expect values, bodies plain and
chunked, well or badly), pipelined one to three at a time, mutated and cut at random places;
and plain random bytes. One server, on its own event loop thread, serves every example.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from tests.integration.gateway.frontends.http_wire import serving

WAIT_S = 5.0  # a hang, not a timing check: the server's own deadlines here are 0.3 s


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    found: list[int] = []

    async def run() -> None:
        limits = {"head_timeout_s": 0.3, "body_timeout_s": 0.3, "max_head": 4096}
        async with serving(**limits) as served:
            found.append(served.port)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(WAIT_S)
    yield found[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(WAIT_S)


tokens = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "G\x00T", ""])
paths = st.sampled_from(
    ["/v2/models/m/infer", "/v2/health/live", "/slow/1", "/fail/known", "/big/10"]
) | st.text(st.sampled_from("/abc%2F%25%00 ?#.\x7f\xe9"), max_size=30).map(lambda t: "/" + t)
versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1", ""])
values = st.sampled_from(
    ["5", " 5 ", "5, 5", "5,6", "-1", "1_0", "+5", "99999999999999999999", "", "x", "0x5"]
)
header = st.one_of(
    st.tuples(st.just("Content-Length"), values),
    st.tuples(st.just("Transfer-Encoding"), st.sampled_from(["chunked", "gzip, chunked", "x"])),
    st.tuples(st.just("Host"), st.sampled_from(["x", "", "a b"])),
    st.tuples(st.just("Expect"), st.sampled_from(["100-continue", "nope"])),
    st.tuples(st.just("Connection"), st.sampled_from(["close", "keep-alive", "upgrade"])),
    st.tuples(st.just("Inference-Header-Content-Length"), values),
    st.tuples(st.text("abc-\x00 :", max_size=8), st.text("ab \x01\r\x7f", max_size=8)),
)


@st.composite
def chunked(draw: st.DrawFn) -> bytes:
    chunks = draw(st.lists(st.binary(max_size=12), max_size=3))
    out = b"".join(
        b"%x%s\r\n%s\r\n" % (len(c), draw(st.sampled_from([b"", b";x=y"])), c) for c in chunks
    )
    return out + draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nT: v\r\n\r\n", b"zz\r\n", b""]))


@st.composite
def odd_request(draw: st.DrawFn) -> bytes:
    line = f"{draw(tokens)} {draw(paths)} {draw(versions)}\r\n"
    headers = draw(st.lists(header, max_size=5))
    head = line + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    body = draw(st.binary(max_size=16) | chunked())
    return head.encode("latin-1", "replace") + body


@st.composite
def good_request(draw: st.DrawFn) -> bytes:
    """A request the server should answer (200, 404, 405, 400 from a handler ...)."""
    method = draw(st.sampled_from(["GET", "POST", "HEAD"]))
    path = draw(paths)
    extra = draw(
        st.lists(st.sampled_from(["Expect: 100-continue", "X-A: b", "Accept: */*"]), max_size=2)
    )
    head = [f"{method} {path} HTTP/1.1", "Host: x", *extra]
    body = b""
    if method == "POST":
        body = draw(st.binary(max_size=64))
        if draw(st.booleans()):
            head.append(f"Content-Length: {len(body)}")
        else:
            head.append("Transfer-Encoding: chunked")
            body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


request = st.one_of(good_request(), good_request(), odd_request())


@st.composite
def stream(draw: st.DrawFn) -> bytes:
    data = b"".join(draw(st.lists(request, min_size=1, max_size=3)))
    if draw(st.integers(0, 3)) == 0:  # cut it, or splice junk in
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at + draw(st.integers(0, 4)) :]
    return data


def converse(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, read until the server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have closed already (e.g. a 431 on a huge head)
        got = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                return got
            if not part:
                return got
            got += part


def statuses(answer: bytes) -> list[int]:
    """The status of each response in ``answer`` (bodies by Content-Length), checking form."""
    out = []
    rest = answer
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"a response head that does not end: {head[:200]!r}"
        lines = head.split(b"\r\n")
        version, code, _ = lines[0].split(b" ", 2)
        assert version == b"HTTP/1.1", lines[0]
        status = int(code)
        assert 100 <= status <= 599, lines[0]
        fields = dict(line.split(b": ", 1) for line in lines[1:])
        if status != 100:  # the answer to a HEAD has a Content-Length but no body
            after = rest[int(fields.get(b"Content-Length", b"0")) :]
            if not after or after.startswith(b"HTTP/") or not rest.startswith(b"HTTP/"):
                rest = after
        out.append(status)
    return out


def assert_alive(port: int) -> None:
    answer = converse(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert statuses(answer) == [200]


@fuzz(150)
@given(data=stream())
@example(data=b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
@example(
    data=b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;"
    + b"x" * 5000
)
def test_any_request_stream_gets_well_formed_answers_and_an_end(port: int, data: bytes) -> None:
    assert 500 not in statuses(converse(port, data))
    assert_alive(port)


@fuzz(100)
@given(data=st.binary(max_size=512))
def test_random_bytes_get_well_formed_answers_and_an_end(port: int, data: bytes) -> None:
    assert 500 not in statuses(converse(port, data))
    assert_alive(port)
