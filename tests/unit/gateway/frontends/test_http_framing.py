"""The framer cuts a request stream where its parts end and counts each part against its limit,
whatever the reads: a stream cut anywhere parses as the whole does."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.frontends.http_framing import Framer, FramingError

HEAD = b"POST /x HTTP/1.1\r\nHost: h\r\n"


class Recorder:
    """A parser's callbacks, told to the framer as the connection tells it."""

    def __init__(self, framer: Framer) -> None:
        self.framer = framer
        self.events: list[object] = []
        self.headers: dict[bytes, bytes] = {}
        self.body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if b"transfer-encoding" in self.headers:
            self.framer.chunked()
        else:
            self.framer.body(int(self.headers.get(b"content-length", b"0")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.events.append(self.body)
        self.headers, self.body = {}, b""
        self.framer.message_done()


def feed(
    reads: list[bytes], max_head: int = 1024, max_line: int = 64, whole: bool = True
) -> tuple[list[object], list[int]]:
    """Feed ``reads`` as the connection does (at once when ``whole`` allows it, else part by
    part); the bodies of the messages and the sizes fed."""
    framer = Framer(max_head, max_line)
    recorder = Recorder(framer)
    parser = httptools.HttpRequestParser(recorder)
    sizes = []
    for data in reads:
        if whole and framer.whole(data):
            sizes.append(len(data))
            parser.feed_data(data)
            continue
        start = 0
        while start < len(data):
            end = framer.split(data, start)
            assert end > start
            sizes.append(end - start)
            parser.feed_data(data[start:end])
            start = end
    return recorder.events, sizes


def test_a_head_and_its_body_are_separate_parts() -> None:
    raw = HEAD + b"Content-Length: 3\r\n\r\nabc"
    events, sizes = feed([raw], whole=False)
    assert events == [b"abc"]
    assert sizes == [len(raw) - 3, 3]


def test_one_whole_request_is_fed_at_once_and_the_rest_of_its_body_too() -> None:
    raw = HEAD + b"content-length:  10 \r\n\r\n" + b"b" * 10
    assert feed([raw]) == ([b"b" * 10], [len(raw)])
    assert feed([raw[:-6], raw[-6:-2], raw[-2:]]) == ([b"b" * 10], [len(raw) - 6, 4, 2])
    assert feed([HEAD + b"\r\n"]) == ([b""], [len(HEAD) + 2])


@pytest.mark.parametrize(
    "raw",
    [
        HEAD + b"Content-Length: 1\r\n\r\nab",  # something after the body: pipelined
        HEAD + b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",  # a second request
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        HEAD + b"Content-Length: 1_0\r\n\r\nab",  # the parser's to refuse
        HEAD + b"X: y",  # a head not ended
    ],
)
def test_anything_else_is_cut_in_parts(raw: bytes) -> None:
    assert not Framer(1024, 64).whole(raw)


def test_a_whole_head_over_the_limit_is_cut_and_refused() -> None:
    raw = HEAD + b"X: " + b"a" * 2000 + b"\r\n\r\n"
    assert not Framer(1024, 64).whole(raw)
    with pytest.raises(FramingError):
        feed([raw])


def test_an_end_of_head_split_across_reads_is_found() -> None:
    raw = HEAD + b"Content-Length: 2\r\n\r\nok"
    for cut in range(len(raw) - 6, len(raw) - 1):
        events, sizes = feed([raw[:cut], raw[cut:]])
        assert events == [b"ok"]
        assert sum(sizes[:-1]) == len(raw) - 2 and sizes[-1] <= 2


def test_pipelined_messages_are_cut_at_each_end() -> None:
    one = HEAD + b"Content-Length: 1\r\n\r\na"
    chunked = HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;x=y\r\nbc\r\n0\r\nT: 1\r\n\r\n"
    events, _ = feed([one + chunked + one])
    assert events == [b"a", b"bc", b"a"]


def test_empty_lines_before_a_request_are_skipped() -> None:
    events, _ = feed([b"\r\n\r\n\r\n" + HEAD + b"\r\n"])
    assert events == [b""]


def test_an_unfinished_head_over_the_limit_is_431_before_its_end() -> None:
    framer = Framer(100, 64)
    framer.split(HEAD, 0)
    with pytest.raises(FramingError) as info:
        framer.split(b"X-Long: " + b"a" * 100, 0)
    assert info.value.status == 431


def test_a_head_of_exactly_the_limit_passes() -> None:
    raw = HEAD + b"X: " + b"a" * 10 + b"\r\n\r\n"
    assert feed([raw], max_head=len(raw))[0] == [b""]
    with pytest.raises(FramingError):
        feed([raw], max_head=len(raw) - 1)


def test_a_long_chunk_line_is_400_even_when_it_ends_in_the_same_read() -> None:
    raw = HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;" + b"e" * 100 + b"\r\nabc\r\n0\r\n\r\n"
    with pytest.raises(FramingError) as info:
        feed([raw], max_line=64)
    assert info.value.status == 400 and "chunk-size line" in info.value.message


def test_trailers_count_against_the_head_limit() -> None:
    raw = HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nT: " + b"t" * 2000 + b"\r\n\r\n"
    with pytest.raises(FramingError) as info:
        feed([raw], max_head=1024)
    assert info.value.status == 431 and "trailers" in info.value.message


MESSAGES = [
    HEAD + b"Content-Length: 5\r\n\r\nhello",
    HEAD + b"\r\n",
    HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;a=b\r\n!\r\n0\r\n\r\n",
    HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n",
    b"\r\n" + HEAD + b"Content-Length: 0\r\n\r\n",
]


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(MESSAGES))), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_a_stream_cut_anywhere_parses_as_the_whole(picks: list[int], cuts: list[int]) -> None:
    stream = b"".join(MESSAGES[i] for i in picks)
    reads, at = [], 0
    for n in cuts:
        reads.append(stream[at : at + n])
        at += n
    reads.append(stream[at:])
    at_once, _ = feed([stream])
    cut, sizes = feed([r for r in reads if r])
    assert cut == at_once and len(at_once) == len(picks)
    assert sum(sizes) == len(stream)
