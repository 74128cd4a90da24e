"""A request's id: the caller's (checked), else the body's, else one made once; and what its
batches tell it (``RequestInfo.sent``)."""

from __future__ import annotations

import re

import pytest

from gateway.errors import Code, InferError
from gateway.observe.request import MAX_ID_CHARS, RequestInfo, checked_request_id


@pytest.mark.parametrize("value", [None, ""])
def test_no_request_id_is_the_empty_one(value: str | None) -> None:
    assert checked_request_id(value) == ""


@pytest.mark.parametrize("value", ["a", "req-42_x.Y:z/1~!", "x" * MAX_ID_CHARS])
def test_a_valid_request_id_is_kept_as_given(value: str) -> None:
    assert checked_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["x" * (MAX_ID_CHARS + 1), "two words", " lead", "trail ", "caf\u00e9", "tab\there", "nl\n"],
)
def test_a_bad_request_id_is_invalid_argument_naming_the_header(value: str) -> None:
    with pytest.raises(InferError) as err:
        checked_request_id(value)
    assert err.value.code is Code.INVALID_ARGUMENT
    assert "X-Request-Id" in err.value.message


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\x7f"])
def test_control_characters_are_refused(char: str) -> None:
    with pytest.raises(InferError):
        checked_request_id(f"id{char}")


def test_the_given_id_comes_before_the_body_s() -> None:
    info = RequestInfo("http", 0, given_id="given")
    info.body_id = "body"
    assert info.request_id == "given"


def test_the_body_s_id_comes_before_a_made_one() -> None:
    info = RequestInfo("grpc", 0)
    info.body_id = "body"
    assert info.request_id == "body"


def test_a_made_id_is_16_hex_digits_made_once() -> None:
    info = RequestInfo("http", 0)
    made = info.request_id
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    assert info.request_id == made  # stable
    assert RequestInfo("http", 0).request_id != made  # each request its own


def test_a_body_id_that_comes_later_replaces_the_made_one() -> None:
    info = RequestInfo("http", 0)
    made = info.request_id  # e.g. asked for before the body was parsed
    info.body_id = "body"
    assert info.request_id == "body"
    info.body_id = ""
    assert info.request_id == made


def test_sent_fills_the_batch_fields_and_counts_tries() -> None:
    info = RequestInfo("http", 0)
    assert info.tries == 0
    info.sent(1_500_000, 8, "10.0.0.1:8001")
    assert (info.queue_ns, info.batch_rows, info.pod, info.tries) == (
        1_500_000,
        8,
        "10.0.0.1:8001",
        1,
    )
    info.sent(2_000_000, 3, "10.0.0.2:8001")  # retried on another pod: the last batch's
    assert (info.queue_ns, info.batch_rows, info.pod, info.tries) == (
        2_000_000,
        3,
        "10.0.0.2:8001",
        2,
    )
