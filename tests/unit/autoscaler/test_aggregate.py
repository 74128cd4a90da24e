"""Aggregation of the gateways' reports: sums, TTL expiry, missing gateways, goodbyes."""

from __future__ import annotations

import pytest

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.load import Cost
from autoscaler.receiver import decode_report
from protos import autoscaler_pb2 as pb


def report(replica: str, **fields: object) -> GatewayReport:
    return GatewayReport(replica_id=replica, model="sim", interval_s=0.25, **fields)  # type: ignore[arg-type]


def store() -> ReportStore:
    return ReportStore(ttl_s=1.0, missing_hold_s=10.0)


def test_sums_levels_and_rates_across_gateways_and_takes_the_largest_endpoint_view() -> None:
    s = store()
    s.record(report("a", queued_rows=4, inflight_rows=10, arrived_requests=5, ready_endpoints=3), 0)
    s.record(
        report("b", queued_rows=6, inflight_rows=20, rejected_requests=1, ready_endpoints=2), 0
    )
    load = s.load("sim", 0.5)
    assert load is not None
    assert (load.reporters, load.queued_rows, load.inflight_rows) == (2, 10, 30)
    assert load.arrived_requests_per_s == pytest.approx(20.0)
    assert load.rejected_requests_per_s == pytest.approx(4.0)
    assert load.ready_endpoints == 3


def test_a_newer_report_of_the_same_gateway_replaces_its_older_one() -> None:
    s = store()
    s.record(report("a", queued_rows=4), 0)
    s.record(report("a", queued_rows=1), 0.25)
    load = s.load("sim", 0.5)
    assert load is not None and (load.reporters, load.queued_rows) == (1, 1)


def test_an_expired_gateway_is_missing_not_zero_then_forgotten() -> None:
    s = store()
    s.record(report("a", inflight_rows=50), 0)
    s.record(report("b", inflight_rows=5), 1.5)
    load = s.load("sim", 2.0)
    assert load is not None and (load.reporters, load.missing, load.inflight_rows) == (1, 1, 5)
    later = s.load("sim", 12.0)
    assert later is None  # b expired too, a forgotten: no data, which holds
    s.record(report("b", inflight_rows=5), 12.0)
    fresh = s.load("sim", 12.1)
    assert fresh is not None and fresh.missing == 0


def test_a_goodbye_removes_the_gateway_without_holding() -> None:
    s = store()
    s.record(report("a", inflight_rows=50), 0)
    s.record(report("b", inflight_rows=5), 0)
    s.record(report("a", final=True), 0.1)
    load = s.load("sim", 2.0 - 1.5)
    assert load is not None and (load.reporters, load.missing, load.inflight_rows) == (1, 0, 5)


def test_no_live_report_is_no_data() -> None:
    s = store()
    assert s.load("sim", 0) is None
    s.record(report("a"), 0)
    assert s.load("sim", 1.01) is None
    assert s.staleness("sim", 3.0) == pytest.approx(3.0)


def test_costs_are_weighted_by_completed_rows() -> None:
    s = store()
    s.record(report("a", cost=Cost(0.010, 0.001), completed_rows=299), 0)
    s.record(report("b", cost=Cost(0.020, 0.002), completed_rows=99), 0)
    s.record(report("c"), 0)
    load = s.load("sim", 0)
    assert load is not None and load.cost is not None
    assert load.cost.fixed_s == pytest.approx(0.0125)


def test_decode_report_keeps_every_field() -> None:
    msg = pb.LoadReport(
        replica_id="gw-1", model="sim", seq=7, interval_s=0.25, queued_requests=1, queued_rows=2,
        inflight_rows=3, arrived_requests=4, arrival_rows_per_s=5.5, completed_rows=6,
        rejected_requests=7, slots_per_pod=2, max_batch_size=32, ready_endpoints=3,
        starting_endpoints=1, final=False, devices_per_pod=1, terminating_endpoints=2,
    )  # fmt: skip
    assert decode_report(msg).cost is None
    msg.batch_cost.fixed_s = 0.01
    r = decode_report(msg)
    assert r.cost == Cost(0.01, 0.0)
    assert (r.seq, r.arrival_rows_per_s, r.starting_endpoints, r.max_batch_size) == (7, 5.5, 1, 32)
    assert (r.slots_per_pod, r.devices_per_pod, r.terminating_endpoints) == (2, 1, 2)


def test_pods_starting_and_terminating_are_kept_apart_with_devices_and_slots() -> None:
    s = store()
    s.record(report("a", slots_per_pod=2, devices_per_pod=1, starting_endpoints=1), 0)
    s.record(report("b", slots_per_pod=2, devices_per_pod=1, terminating_endpoints=2), 0)
    load = s.load("sim", 0.5)
    assert load is not None
    assert (load.slots_per_pod, load.devices_per_pod) == (2, 1)
    assert (load.starting_endpoints, load.terminating_endpoints) == (1, 2)


def test_queue_growth_is_summed_over_consecutive_reports_of_each_gateway() -> None:
    s = store()
    s.record(report("a", seq=1, queued_rows=10), 0)
    s.record(report("b", seq=4, queued_rows=50), 0)
    first = s.load("sim", 0.0)
    assert first is not None and first.queue_growth_rows_per_s == 0.0, "no pair yet"
    s.record(report("a", seq=2, queued_rows=60), 0.25)  # +50 rows in 0.25 s
    s.record(report("b", seq=5, queued_rows=40), 0.25)  # -10 rows
    once = s.load("sim", 0.25)
    assert once is not None and once.queue_growth_rows_per_s == -40.0  # a's is unconfirmed
    s.record(report("a", seq=3, queued_rows=85), 0.5)  # +25 rows: grew again, by less
    s.record(report("b", seq=6, queued_rows=30), 0.5)  # -10 rows again
    load = s.load("sim", 0.5)
    assert load is not None and load.queue_growth_rows_per_s == pytest.approx(100 - 40)
    s.record(report("a", seq=1, queued_rows=500), 0.75)  # a restarted gateway: no pair
    s.record(report("b", seq=7, queued_rows=30), 0.75)
    after = s.load("sim", 0.75)
    assert after is not None and after.queue_growth_rows_per_s == 0.0


def test_one_intervals_jump_in_the_queue_is_not_growth() -> None:
    s = store()  # a generator catching up after a stall: a jump, drained in the next interval
    for seq, (at, rows) in enumerate([(0, 10), (0.25, 10), (0.5, 400), (0.75, 20)], start=1):
        s.record(report("a", seq=seq, queued_rows=rows), at)
        load = s.load("sim", at)
        assert load is not None and load.queue_growth_rows_per_s <= 0.0, (at, load)


def test_the_replicas_sharing_the_pods_are_the_live_and_the_held_ones_sorted() -> None:
    s = store()  # ttl 1 s, hold 10 s
    s.record(report("b", seq=1), 0)
    s.record(report("a", seq=1), 0)
    s.record(report("c", seq=1), 0)
    assert s.replicas("sim", 0.5) == ["a", "b", "c"]
    s.record(report("c", seq=2, final=True), 0.6)  # a goodbye: out at once
    s.record(report("a", seq=2), 5.0)
    assert s.replicas("sim", 5.0) == ["a", "b"]  # b is silent but held: it may be serving
    assert s.replicas("sim", 11.5) == ["a"]  # b past its hold
    assert s.replicas("other", 0.0) == []


def test_growth_after_a_shrinking_interval_is_confirmed_by_nothing_not_cancelled() -> None:
    s = store()
    for seq, (at, rows) in enumerate([(0, 400), (0.25, 100), (0.5, 300), (0.75, 500)], start=1):
        s.record(report("a", seq=seq, queued_rows=rows), at)
    load = s.load("sim", 0.75)
    assert load is not None and load.queue_growth_rows_per_s == pytest.approx(800)


def test_a_held_replica_is_listed_without_its_peer_address() -> None:
    s = store()  # ttl 1 s, hold 10 s
    s.record(report("a", seq=1, peer_address="10.0.0.1:8000"), 0)
    s.record(report("b", seq=1, peer_address="10.0.0.2:8000"), 0)
    s.record(report("b", seq=2, peer_address="10.0.0.2:8000"), 1.5)
    assert s.peers("sim", 0.5) == [("a", "10.0.0.1:8000"), ("b", "10.0.0.2:8000")]
    assert s.peers("sim", 2.0) == [("a", ""), ("b", "10.0.0.2:8000")]  # a went silent
