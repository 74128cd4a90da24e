"""A pod's device timeline: service times net of waiting and round trips, and when to send."""

from __future__ import annotations

from gateway.batching.cost_model import BatchCost
from gateway.batching.timeline import DeviceTimeline, RoundTrip

SIM = BatchCost(fixed_s=0.008, per_row_s=0.00025)  # 16 ms at 32 rows
RTT = 0.001


def timeline(devices: int = 1) -> DeviceTimeline:
    return DeviceTimeline(devices, RoundTrip(RTT))


def test_an_idle_device_takes_a_batch_at_once() -> None:
    t = timeline()
    assert t.send_at(SIM, 5.0) == 5.0
    t.sent(32, 5.0)
    # Busy: the next batch should leave one round trip before the first is answered.
    assert t.send_at(SIM, 5.0) == 5.0 + RTT + 0.016 - RTT


def test_service_excludes_the_round_trip_and_the_wait_behind_another_batch() -> None:
    t = timeline()
    first = t.sent(32, 0.0)
    second = t.sent(32, 0.002)  # waits on the pod behind the first
    assert t.finished(first, RTT + 0.016) == 0.016
    assert t.finished(second, RTT + 0.032) == 0.016


def test_a_batch_that_reached_the_pod_after_the_device_freed_is_timed_from_its_arrival() -> None:
    t = timeline()
    first = t.sent(32, 0.0)
    late = t.sent(32, 0.020)  # after the first was done on the pod
    assert t.finished(first, 0.017) == 0.016
    assert abs(t.finished(late, 0.020 + RTT + 0.016) - 0.016) < 1e-9


def test_waiting_batches_count_before_a_new_one() -> None:
    t = timeline()
    t.sent(32, 0.0)  # runs: answered at 0.017
    t.sent(8, 0.0)  # waits: 10 ms more
    assert abs(t.send_at(SIM, 0.0) - (0.017 + 0.010 - RTT)) < 1e-9


def test_several_devices_free_in_turn() -> None:
    t = timeline(devices=2)
    a = t.sent(32, 0.0)
    assert t.send_at(SIM, 0.0) == 0.0  # the second device is idle
    t.sent(8, 0.0)
    assert abs(t.send_at(SIM, 0.0) - 0.010) < 1e-9  # the 8-row batch ends first
    t.finished(a, 0.017)
    assert t.send_at(SIM, 0.017) == 0.017  # a device is free again
    assert len(t) == 1


def test_send_at_is_never_in_the_past_and_unknown_cost_sends_now() -> None:
    t = timeline()
    t.sent(1, 0.0)
    assert t.send_at(SIM, 1.0) == 1.0  # overdue: the batch ahead should be done by now
    assert t.send_at(None, 0.0) == 0.0


def test_a_failed_batch_frees_its_device_and_finishing_twice_is_harmless() -> None:
    t = timeline()
    a = t.sent(4, 0.0)
    b = t.sent(4, 0.0)
    t.finished(a, 0.5)
    assert t.finished(a, 0.6) == 0.0
    assert t.send_at(SIM, 0.5) > 0.5  # b runs now
    t.finished(b, 0.6)
    assert t.send_at(SIM, 0.6) == 0.6


def test_round_trip_drops_the_connecting_sample_and_damps_spikes() -> None:
    rtt = RoundTrip(0.001, weight=0.5)
    rtt.observe(0.065)  # the first probe pays for the connection
    assert rtt.seconds == 0.001
    rtt.observe(0.003)
    assert rtt.seconds == 0.002
    rtt.observe(1.0)  # one stalled answer counts as 3x the estimate
    assert rtt.seconds == 0.004
