"""The committed generated modules match what grpcio-tools makes from the .proto sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [
    "protos/model_config.proto",
    "protos/grpc_service.proto",
    "protos/autoscaler.proto",
    "protos/externalscaler.proto",
]
GENERATED = [
    "autoscaler_pb2.py",
    "autoscaler_pb2.pyi",
    "autoscaler_pb2_grpc.py",
    "externalscaler_pb2.py",
    "externalscaler_pb2.pyi",
    "externalscaler_pb2_grpc.py",
    "grpc_service_pb2.py",
    "grpc_service_pb2.pyi",
    "grpc_service_pb2_grpc.py",
    "model_config_pb2.py",
    "model_config_pb2.pyi",
    "model_config_pb2_grpc.py",
]


def test_generated_modules_are_current(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *SOURCES,
        ],
        cwd=ROOT,
        check=True,
    )
    stale = [
        name
        for name in GENERATED
        if (tmp_path / "protos" / name).read_bytes() != (ROOT / "protos" / name).read_bytes()
    ]
    assert not stale, f"regenerate with `make protos`: {stale} differ from their .proto sources"


def test_service_keeps_triton_names_and_field_numbers() -> None:
    from protos import grpc_service_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    request = pb.ModelInferRequest.DESCRIPTOR.fields_by_name
    assert {n: f.number for n, f in request.items()} == {
        "model_name": 1,
        "model_version": 2,
        "id": 3,
        "parameters": 4,
        "inputs": 5,
        "outputs": 6,
        "raw_input_contents": 7,
    }
    response = pb.ModelInferResponse.DESCRIPTOR.fields_by_name
    assert response["raw_output_contents"].number == 6
    assert pb.ModelStreamInferResponse.DESCRIPTOR.fields_by_name["infer_response"].number == 2


def test_external_scaler_keeps_keda_names_and_field_numbers() -> None:
    from protos import externalscaler_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    assert service.full_name == "externalscaler.ExternalScaler"
    assert sorted(service.methods_by_name) == [
        "GetMetricSpec",
        "GetMetrics",
        "IsActive",
        "StreamIsActive",
    ]
    numbers = {
        m: {n: f.number for n, f in getattr(pb, m).DESCRIPTOR.fields_by_name.items()}
        for m in ("ScaledObjectRef", "MetricSpec", "GetMetricsRequest", "MetricValue")
    }
    assert numbers == {
        "ScaledObjectRef": {"name": 1, "namespace": 2, "scalerMetadata": 3},
        "MetricSpec": {"metricName": 1, "targetSize": 2, "targetSizeFloat": 3},
        "GetMetricsRequest": {"scaledObjectRef": 1, "metricName": 2},
        "MetricValue": {"metricName": 1, "metricValue": 2, "metricValueFloat": 3},
    }
