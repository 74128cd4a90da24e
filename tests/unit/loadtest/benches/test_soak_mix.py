"""The soak's mix, pure: lanes and shares, the weighted pick, how answers count, the tally."""

from __future__ import annotations

from collections import Counter

import pytest

from loadtest.benches.soak_mix import (
    BAD_VARIANTS,
    DISCONNECT_WIRES,
    LanePicker,
    Tally,
    classify,
    interval_of,
    mix_lanes,
)

FOUR = {"http-json": 1.0, "http-binary": 1.0, "grpc": 1.0, "grpc-stream": 1.0}


def test_the_shares_sum_to_one_and_split_each_part_as_asked() -> None:
    lanes = mix_lanes({"http-json": 3.0, "grpc": 1.0}, 0.05, 0.03)
    shares = {lane.name: share for lane, share in lanes}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["http-json"] == pytest.approx(0.92 * 0.75)
    assert shares["grpc"] == pytest.approx(0.92 * 0.25)
    bad = [lane for lane, _ in lanes if lane.category == "bad"]
    assert [(b.variant, b.wire) for b in bad] == list(BAD_VARIANTS)
    assert all(shares[b.name] == pytest.approx(0.01) for b in bad)
    cuts = [lane for lane, _ in lanes if lane.category == "disconnect"]
    assert [c.wire for c in cuts] == list(DISCONNECT_WIRES)
    assert all(shares[c.name] == pytest.approx(0.01) for c in cuts)


def test_zero_shares_leave_their_lanes_out() -> None:
    lanes = mix_lanes({"http-json": 1.0, "grpc": 0.0}, 0.0, 0.0)
    assert [(lane.name, share) for lane, share in lanes] == [("http-json", 1.0)]


@pytest.mark.parametrize(
    ("protocols", "bad", "cut"),
    [
        ({"ftp": 1.0}, 0.0, 0.0),
        ({"grpc": 0.0}, 0.0, 0.0),
        ({"grpc": -1.0, "http-json": 2.0}, 0.0, 0.0),
        ({"grpc": 1.0}, 0.6, 0.4),
        ({"grpc": 1.0}, -0.1, 0.0),
    ],
)
def test_a_mix_that_cannot_be_run_is_refused(
    protocols: dict[str, float], bad: float, cut: float
) -> None:
    with pytest.raises(ValueError):
        mix_lanes(protocols, bad, cut)


@pytest.mark.parametrize("start", [0, 3])
def test_each_lane_stays_within_two_requests_of_its_share_all_through_a_run(start: int) -> None:
    shares = [share for _, share in mix_lanes(FOUR, 0.02, 0.02)]
    picker = LanePicker(shares, start=start)
    counts = [0] * len(shares)
    for n in range(1, 20_001):
        counts[picker.next()] += 1
        assert all(abs(c - n * s) < 2.0 for c, s in zip(counts, shares, strict=True))


def test_a_picker_needs_some_weight() -> None:
    with pytest.raises(ValueError):
        LanePicker([0.0, 0.0])
    with pytest.raises(ValueError):
        LanePicker([])


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        (None, "ok"),
        ("http 429", "rejected"),
        ("grpc RESOURCE_EXHAUSTED", "rejected"),
        ("timeout", "lost"),
        ("unfinished", "lost"),
        ("http ConnectionError", "lost"),
        ("http bad response", "lost"),
        ("grpc UNAVAILABLE", "lost"),
        ("grpc DEADLINE_EXCEEDED", "lost"),
        ("grpc-stream closed", "lost"),
        ("http 500", "failed"),
        ("http 400", "failed"),
        ("grpc INTERNAL", "failed"),
        ("wrong answer", "failed"),
    ],
)
def test_a_good_request_counts_by_what_came_back(kind: str | None, outcome: str) -> None:
    assert classify("good", kind) == outcome


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        ("http 400", "expected"),
        ("grpc INVALID_ARGUMENT", "expected"),
        ("http 429", "rejected"),
        (None, "wrong"),
        ("http 500", "wrong"),
        ("grpc UNKNOWN", "wrong"),
        ("timeout", "wrong"),
    ],
)
def test_a_bad_request_must_be_refused_as_invalid(kind: str | None, outcome: str) -> None:
    assert classify("bad", kind) == outcome


def test_a_disconnect_is_not_classified_from_an_error_kind() -> None:
    with pytest.raises(ValueError):
        classify("disconnect", None)


def test_requests_count_in_the_interval_they_were_sent_in() -> None:
    s = 10**9
    assert interval_of(5 * s, 10 * s, 2 * s, 3) == -1  # the warm-up
    assert interval_of(10 * s, 10 * s, 2 * s, 3) == 0
    assert interval_of(13 * s, 10 * s, 2 * s, 3) == 1
    assert interval_of(16 * s, 10 * s, 2 * s, 3) == 2  # after the window: the last one
    assert interval_of(99 * s, 10 * s, 2 * s, 3) == 2


def test_tallies_merge_and_sum_by_category_and_interval() -> None:
    lanes = [lane for lane, _ in mix_lanes(FOUR, 0.02, 0.02)]
    a, b = Tally(), Tally()
    a.add(0, "grpc", "ok")
    a.add(1, "grpc", "lost", "timeout")
    b.add(1, "http-json", "ok")
    b.add(1, "bad unknown-input grpc", "expected")
    b.add(-1, "disconnect grpc", "cut")
    merged = Tally.merge([a, b])
    assert merged.by_category(lanes, 1) == {
        "good": Counter({"ok": 1, "lost": 1}),
        "bad": Counter({"expected": 1}),
        "disconnect": Counter(),
    }
    assert merged.by_category(lanes)["disconnect"] == Counter({"cut": 1})
    assert merged.outcomes(lane="grpc") == Counter({"ok": 1, "lost": 1})
    assert merged.kinds == Counter({("grpc", "timeout"): 1})
    assert merged.lane_outcomes(0, lanes[:2]) == {"http-json": {}, "http-binary": {}}
