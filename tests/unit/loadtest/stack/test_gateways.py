"""Gateway replicas as one: their names in reports, addresses per protocol, metrics URLs, and
which one exited. No processes: the replicas' Popen is a stand-in."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import cast

import pytest

from loadtest.stack.gateways import Gateways, gateway_name, start_gateways
from loadtest.stack.procs import GatewayProc


class _Popen:
    def __init__(self, code: int | None = None) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode


def _gateway(port: int, code: int | None = None) -> GatewayProc:
    popen = cast("subprocess.Popen[bytes]", _Popen(code))
    return GatewayProc("gateway", popen, port + 2, Path("unused.yaml"), port, port + 1)


def test_the_first_replica_keeps_a_lone_gateways_name() -> None:
    assert [gateway_name(i) for i in range(3)] == ["gateway", "gateway1", "gateway2"]


def test_replicas_are_named_and_addressed_per_protocol() -> None:
    gateways = Gateways((_gateway(8000), _gateway(9000)))
    assert len(gateways) == 2
    assert list(gateways.named()) == ["gateway", "gateway1"]
    assert gateways.addresses("grpc") == ("127.0.0.1:8001", "127.0.0.1:9001")
    assert gateways.addresses("http-binary") == ("http://127.0.0.1:8000", "http://127.0.0.1:9000")
    assert gateways.metrics_urls == {
        "gateway": "http://127.0.0.1:8002/metrics",
        "gateway1": "http://127.0.0.1:9002/metrics",
    }


def test_gone_names_the_replica_that_exited() -> None:
    assert Gateways((_gateway(8000), _gateway(9000))).gone() is None
    assert Gateways((_gateway(8000), _gateway(9000, 3))).gone() == "gateway1 exited with 3"


def test_no_replica_is_refused() -> None:
    with pytest.raises(ValueError, match="gateways"):
        start_gateways(0, [{"name": "sim", "endpoints": []}])
