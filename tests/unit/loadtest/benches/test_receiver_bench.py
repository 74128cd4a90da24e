"""``loadtest receiver-bench`` runs on tiny numbers; its figures are not checked."""

from __future__ import annotations

from loadtest.benches.receiver import ReceiverBenchConfig, fleet_reports, run_receiver_bench
from protos import autoscaler_pb2 as pb


def test_fleet_reports_cover_every_gateway_and_model() -> None:
    reports = [pb.LoadReport.FromString(b) for b in fleet_reports(2, 3, rounds=2)]
    assert len(reports) == 12
    assert {(r.replica_id, r.model) for r in reports} == {
        (f"gateway-{g}", f"model-{m}") for g in range(2) for m in range(3)
    }
    assert {r.seq for r in reports} == {1, 2}


def test_receiver_bench_runs_on_tiny_numbers() -> None:
    config = ReceiverBenchConfig(
        gateways=2, models=3, duration_s=0.05, ticks=2, client_processes=1, grpc_reports=200
    )
    doc = run_receiver_bench(config)
    assert doc["offered_reports_per_s"] == 24.0
    # whole passes over the fleet's 12 reports, each decoded and recorded
    assert doc["in_process"]["reports"] > 0 and doc["in_process"]["reports"] % 12 == 0
    assert doc["grpc"]["reports"] == 200 and doc["grpc"]["streams"] == 1
    assert (doc["tick"]["models"], doc["tick"]["reports_kept"]) == (3, 6)
