"""The gateway's other gRPC services: grpc.health.v1 and server reflection (what grpcurl,
Kubernetes gRPC probes and grpc_health_probe use)."""

from __future__ import annotations

import grpc
from _compat import Target
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

INFERENCE_SERVICE = "inference.GRPCInferenceService"


def test_health_check_serving(gw_target: Target) -> None:
    with grpc.insecure_channel(gw_target.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_unknown_service(gw_target: Target) -> None:
    with grpc.insecure_channel(gw_target.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
        else:
            assert resp.status != health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(gw_target: Target) -> None:
    with grpc.insecure_channel(gw_target.grpc) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        assert INFERENCE_SERVICE in services, services
        assert "grpc.health.v1.Health" in services, services


def test_reflection_describes_inference_service(gw_target: Target) -> None:
    """The descriptor served by reflection has the v2 methods (a private pool, so nothing
    clashes with tritonclient's registrations in the default pool)."""
    with grpc.insecure_channel(gw_target.grpc) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(INFERENCE_SERVICE)
        methods = {m.name: m for m in service.methods}
        for name in (
            "ServerLive",
            "ServerReady",
            "ModelReady",
            "ServerMetadata",
            "ModelMetadata",
            "ModelInfer",
            "ModelStreamInfer",
            "ModelConfig",
            "ModelStatistics",
        ):
            assert name in methods, sorted(methods)
        infer = methods["ModelInfer"]
        assert infer.input_type.full_name == "inference.ModelInferRequest"
        fields = {f.name: f.number for f in infer.input_type.fields}
        assert fields["model_name"] == 1 and fields["raw_input_contents"] == 7, fields
        stream = methods["ModelStreamInfer"]
        assert stream.client_streaming and stream.server_streaming
