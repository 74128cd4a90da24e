"""The ``loadtest`` command line: sub-commands, defaults, overrides and rejected values."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.cli import build_parser
from loadtest.clients.base import STANDARD_KINDS


def test_stack_defaults_are_the_documented_ports() -> None:
    args = build_parser().parse_args(["stack"])
    assert (args.pods, args.http_port, args.grpc_port, args.metrics_port) == (1, 8000, 8001, 8002)
    assert (args.autoscaler_grpc_port, args.autoscaler_metrics_port) == (8090, 8091)
    assert (args.fixed_ms, args.per_row_ms, args.max_batch) == (20.0, 2.0, 16)
    assert args.kubeconfig == Path(".run/kubeconfig")


def test_stack_ports_and_pod_count_can_be_overridden() -> None:
    args = build_parser().parse_args(
        ["stack", "--pods", "3", "--http-port", "18000", "--autoscaler-grpc-port", "19000"]
    )
    assert (args.pods, args.http_port, args.autoscaler_grpc_port) == (3, 18000, 19000)


def test_bench_defaults() -> None:
    args = build_parser().parse_args(["bench"])
    assert args.protocols == STANDARD_KINDS  # grpc-stream on request
    assert (args.concurrency, args.rows, args.duration, args.warmup) == (16, 1, 5.0, 1.0)
    assert (args.processes, args.rounds, args.max_batch) == (1, 1, 32)
    assert (args.pod_fixed_ms, args.pod_per_row_ms) == (0.0, 0.0)
    assert args.json == Path("reports/bench-datapath.json")
    assert args.backend_protocol == "grpc"


@pytest.mark.parametrize("command", ["bench", "goodput"])
def test_the_backend_protocol_is_grpc_unless_asked_for_http(command: str) -> None:
    parser = build_parser()
    assert parser.parse_args([command]).backend_protocol == "grpc"
    assert parser.parse_args([command, "--backend-protocol", "http"]).backend_protocol == "http"
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--backend-protocol", "rest"])


def test_the_benches_offer_every_backend_protocol_the_gateway_has() -> None:
    from gateway.backends.backend import BACKEND_PROTOCOLS as GATEWAYS
    from loadtest.benches.goodput import BACKEND_PROTOCOLS

    assert BACKEND_PROTOCOLS == GATEWAYS
    for protocol in GATEWAYS:
        args = build_parser().parse_args(["goodput", "--backend-protocol", protocol])
        assert args.backend_protocol == protocol


def test_bench_takes_a_subset_of_protocols() -> None:
    args = build_parser().parse_args(["bench", "--protocols", "grpc,http-binary"])
    assert args.protocols == ("grpc", "http-binary")


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--protocols", "ftp"],
        ["bench", "--concurrency", "0"],
        ["bench", "--duration", "0"],
        ["bench", "--warmup", "-1"],
        ["load", "--protocol", "carrier-pigeon"],
        ["stack", "--pods", "0"],
        [],
    ],
)
def test_bad_arguments_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_gateway_replicas_default_to_one_and_take_a_list() -> None:
    parser = build_parser()
    for command in ("goodput", "trace"):
        assert parser.parse_args([command]).gateways == (1,)
        assert parser.parse_args([command, "--gateways", "3,1,2"]).gateways == (1, 2, 3)
    args = parser.parse_args(["ab", "--a", "gateway", "--b", "gateway:gateways=2"])
    assert args.gateways == 1  # ab: the replicas of a gateway side that names none
    assert (
        parser.parse_args(["ab", "--a", "pod", "--b", "gateway", "--gateways", "2"]).gateways == 2
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["goodput", "--gateways", "0"],
        ["goodput", "--gateways", "1,x"],
        ["goodput", "--gateways", ","],
        ["trace", "--gateways", "-1"],
        ["ab", "--a", "pod", "--b", "gateway", "--gateways", "1,2"],
        ["ab", "--a", "pod", "--b", "gateway:gateways=0"],
    ],
)
def test_bad_gateway_counts_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_gateways_go_without_a_running_target(capsys: pytest.CaptureFixture[str]) -> None:
    from loadtest.cli import main

    with pytest.raises(SystemExit, match="--gateways"):
        main(["goodput", "--target", "http://127.0.0.1:1", "--limit", "10", "--gateways", "2"])
    assert main(["trace", "--target", "http://127.0.0.1:1", "--gateways", "1,2"]) == 2
    assert "--gateways" in capsys.readouterr().out


def test_load_takes_a_target_and_in_process_mode() -> None:
    args = build_parser().parse_args(
        ["load", "--protocol", "grpc", "--target", "127.0.0.1:9001", "--processes", "0"]
    )
    assert (args.protocol, args.target, args.processes, args.model) == (
        "grpc",
        "127.0.0.1:9001",
        0,
        "sim",
    )
