"""The soak's trends, pure: the least-squares slope, the flat rule, readings at interval ends."""

from __future__ import annotations

import pytest

from loadtest.benches.soak_trend import (
    FLOORS,
    Reading,
    at_interval_ends,
    slope_per_min,
    trend,
    trends,
)

MIB = 1024**2


def _rss(points: list[tuple[float, float]], name: str = "gateway") -> list[Reading]:
    return [Reading(t, {name: {"rss_bytes": v, "fds": 10.0, "tasks": None}}) for t, v in points]


def test_the_slope_of_a_straight_line_is_its_rise_per_minute() -> None:
    times = [0.0, 30.0, 60.0, 90.0]
    assert slope_per_min(times, [5.0, 6.0, 7.0, 8.0]) == pytest.approx(2.0)
    assert slope_per_min(times, [9.0, 9.0, 9.0, 9.0]) == pytest.approx(0.0)


def test_noise_around_a_line_fits_the_line() -> None:
    times = [float(t) for t in range(0, 121, 10)]
    noisy = [100.0 + 0.5 * t + (3.0 if i % 2 else -3.0) for i, t in enumerate(times)]
    assert slope_per_min(times, noisy) == pytest.approx(30.0, abs=1.0)


def test_no_slope_from_fewer_than_two_readings_or_one_instant() -> None:
    assert slope_per_min([1.0], [2.0]) is None
    assert slope_per_min([3.0, 3.0], [1.0, 2.0]) is None


def test_rss_growing_past_the_floor_over_the_window_is_not_flat() -> None:
    # A 10-13 MiB process: 10% is under the 2 MiB floor, which rules; 3 MiB in 5 minutes is more.
    readings = _rss([(t, 10 * MIB + 3 * MIB * t / 300) for t in range(0, 301, 60)])
    found = trend(readings, "gateway", "rss_bytes", 300.0)
    assert found is not None
    assert found.allowed == FLOORS["rss_bytes"]
    assert found.growth == pytest.approx(3 * MIB)
    assert not found.flat


def test_growth_within_ten_percent_of_a_large_mean_is_flat() -> None:
    readings = _rss([(t, 200 * MIB + 10 * MIB * t / 300) for t in range(0, 301, 60)])
    found = trend(readings, "gateway", "rss_bytes", 300.0)
    assert found is not None and found.flat
    assert found.allowed == pytest.approx(0.1 * found.mean)


def test_a_falling_figure_is_flat() -> None:
    readings = _rss([(t, 200 * MIB - 50 * MIB * t / 300) for t in range(0, 301, 60)])
    found = trend(readings, "gateway", "rss_bytes", 300.0)
    assert found is not None and found.slope_per_min < 0 and found.flat


def test_figures_not_read_have_no_trend() -> None:
    readings = _rss([(0.0, 1.0), (1.0, 2.0)])
    assert trend(readings, "gateway", "tasks", 1.0) is None
    assert trend(readings, "pod0", "rss_bytes", 1.0) is None
    assert [(t.process, t.metric) for t in trends(readings, 1.0)] == [
        ("gateway", "rss_bytes"),
        ("gateway", "fds"),
    ]


def test_each_interval_shows_its_last_reading() -> None:
    readings = _rss([(t, float(t)) for t in (0.0, 1.0, 2.0, 3.0, 4.2, 5.0, 6.3)])
    ends = at_interval_ends(readings, 2.0, 3)
    assert [None if r is None else r.t_s for r in ends] == [2.0, 4.2, 6.3]
    assert at_interval_ends(readings[:1], 2.0, 2) == [None, None]


def test_a_servers_fds_are_judged_less_the_connections_its_clients_hold() -> None:
    # 40 fds of its own throughout; the clients' keep-alive pool grows from 10 to 60 connections.
    readings = [
        Reading(t, {"gateway": {"rss_bytes": None, "fds": 40.0 + c, "http_conns": c}})
        for t, c in [(0.0, 10.0), (60.0, 30.0), (120.0, 60.0), (180.0, 60.0)]
    ]
    found = trend(readings, "gateway", "fds", 180.0)
    assert found is not None and found.less_http_conns
    assert found.growth == pytest.approx(0.0) and found.mean == 40.0 and found.flat
    raw = [Reading(r.t_s, {"pod0": {"fds": r.procs["gateway"]["fds"]}}) for r in readings]
    grown = trend(raw, "pod0", "fds", 180.0)
    assert grown is not None and not grown.less_http_conns and not grown.flat
