"""The REST server's deadline rules as a time table, the stall rule, header numbers, and the
limits read from the config."""

from __future__ import annotations

import pytest

from gateway.config import ServerSettings
from gateway.frontends.http_limits import (
    Action,
    HttpLimits,
    Phase,
    decimal,
    due,
    limits_from,
    track_stall,
)

LIMITS = HttpLimits(
    keepalive_s=75, head_timeout_s=10, body_timeout_s=60, write_stall_s=30, linger_s=2
)


def at(phase: Phase, age: float, reading: bool = True, buffered: int = 0) -> Action:
    return due(
        phase,
        100.0,
        reading=reading,
        buffered=buffered,
        stalled_since=None,
        now=100.0 + age,
        limits=LIMITS,
    )


@pytest.mark.parametrize(
    ("phase", "age", "action"),
    [
        (Phase.IDLE, 74.9, Action.NONE),
        (Phase.IDLE, 75.0, Action.CLOSE),
        (Phase.HEAD, 9.9, Action.NONE),
        (Phase.HEAD, 10.0, Action.HEAD_TIMEOUT),
        (Phase.BODY, 59.9, Action.NONE),
        (Phase.BODY, 60.0, Action.BODY_TIMEOUT),
        (Phase.BUSY, 3600.0, Action.NONE),  # a request's own deadline bounds its answer
        (Phase.CLOSING, 1.9, Action.NONE),
        (Phase.CLOSING, 2.0, Action.ABORT),
    ],
)
def test_deadlines_by_phase(phase: Phase, age: float, action: Action) -> None:
    assert at(phase, age) is action


def test_a_head_or_body_is_not_late_while_the_server_holds_reading_back() -> None:
    assert at(Phase.HEAD, 1000.0, reading=False) is Action.NONE
    assert at(Phase.BODY, 1000.0, reading=False) is Action.NONE


def test_a_closing_connection_waits_while_its_last_answer_is_being_taken() -> None:
    assert at(Phase.CLOSING, 10.0, buffered=1) is Action.NONE


@pytest.mark.parametrize("phase", list(Phase))
def test_a_peer_that_takes_nothing_for_the_stall_time_is_aborted(phase: Phase) -> None:
    def stalled(since: float) -> Action:
        return due(
            phase, 130.0, reading=False, buffered=10, stalled_since=since, now=131.0, limits=LIMITS
        )

    assert stalled(101.0) is Action.ABORT
    assert stalled(101.5) is not Action.ABORT


def test_a_stall_starts_when_nothing_is_taken_and_ends_when_something_is() -> None:
    assert track_stall(0, 500, 500, None, 1.0) is None  # nothing waits
    assert track_stall(100, 500, 500, None, 1.0) == 1.0  # waits, nothing taken since
    assert track_stall(100, 500, 500, 1.0, 2.0) == 1.0  # still
    assert track_stall(100, 501, 500, 1.0, 3.0) is None  # took a byte


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("115", 115),
        (" 115\t", 115),
        ("0", 0),
        ("1_15", None),
        ("+115", None),
        ("-1", None),
        ("0x73", None),
        ("1.5", None),
        ("", None),
        ("\N{ARABIC-INDIC DIGIT ONE}", None),
    ],
)
def test_a_header_number_is_ascii_digits_within_whitespace(text: str, value: int | None) -> None:
    assert decimal(text) == value


def test_the_limits_come_from_the_server_settings() -> None:
    settings = ServerSettings(
        max_request_bytes=5000,
        http_head_timeout_s=1.5,
        http_body_timeout_s=2.5,
        http_write_stall_s=3.5,
        http_keepalive_s=4.5,
        http_max_connections=7,
        http_max_head_bytes=2048,
        http_read_ahead_bytes=9,
    )
    limits = limits_from(settings)
    assert (limits.max_body, limits.max_head, limits.read_ahead_bytes) == (5000, 2048, 9)
    assert (limits.head_timeout_s, limits.body_timeout_s, limits.write_stall_s) == (1.5, 2.5, 3.5)
    assert (limits.keepalive_s, limits.max_connections) == (4.5, 7)


def test_deadlines_are_checked_often_enough_for_the_shortest() -> None:
    assert HttpLimits().sweep_s == 0.5  # the 2 s linger
    assert HttpLimits(head_timeout_s=0.3).sweep_s == pytest.approx(0.075)
    assert HttpLimits(keepalive_s=0.001).sweep_s == 0.02
