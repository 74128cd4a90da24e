"""The gateway's gRPC server closes connections after a maximum age, so clients rebalance."""

from __future__ import annotations

from gateway.config import ServerSettings
from gateway.frontends.grpc_service import server_options


def test_connection_age_and_grace_reach_the_server_options() -> None:
    options = dict(server_options(ServerSettings()))
    assert options["grpc.max_connection_age_ms"] == 300_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    custom = ServerSettings(grpc_max_connection_age_s=1.5, grpc_max_connection_age_grace_s=0.25)
    options = dict(server_options(custom))
    assert options["grpc.max_connection_age_ms"] == 1500
    assert options["grpc.max_connection_age_grace_ms"] == 250
    assert options["grpc.max_receive_message_length"] == custom.max_request_bytes
