"""The gateway's gRPC server options: connection age, streams per connection, keepalive."""

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


def test_streams_per_connection_and_keepalive_enforcement_reach_the_server_options() -> None:
    options = dict(server_options(ServerSettings()))
    assert options["grpc.max_concurrent_streams"] == 1024
    assert options["grpc.keepalive_time_ms"] == 60_000
    assert options["grpc.keepalive_timeout_ms"] == 20_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.http2.max_ping_strikes"] == 2
    custom = ServerSettings(
        grpc_max_concurrent_streams=8,
        grpc_keepalive_permit_without_calls=False,
        grpc_min_ping_interval_s=0.5,
        grpc_max_ping_strikes=0,
    )
    options = dict(server_options(custom))
    assert options["grpc.max_concurrent_streams"] == 8
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 500
    assert options["grpc.http2.max_ping_strikes"] == 0
