"""The simulated pod's engine, stats, metrics and command line, with zero device time.

With F = c = 0 every deadline has already passed, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loadtest.simpod.config import parse_args
from loadtest.simpod.core import Faults
from loadtest.simpod.engine import Engine
from loadtest.simpod.errors import Code, SimError
from loadtest.simpod.models import build_models
from protos.infer import InferRequestBody
from protos.json_format import message_to_dict as to_dict
from protos.tensors import from_numpy, to_numpy


def _engine(faults: Faults | None = None, devices: int = 1) -> Engine:
    engine = Engine(
        build_models("sim", 8, with_identity=False),
        devices=devices,
        fixed_ms=0.0,
        per_row_ms=0.0,
        faults=faults or Faults(),
        seed=1,
    )
    engine.set_started()
    return engine


def _request(rows: int) -> InferRequestBody:
    values = np.linspace(-1, 1, rows * 16, dtype=np.float32).reshape(rows, 16)
    return InferRequestBody([from_numpy("INPUT0", "FP32", values)], id=f"r{rows}")


def _sample(engine: Engine, name: str, **labels: str) -> float | None:
    return engine.metrics.registry.get_sample_value(name, labels)


async def test_infer_computes_and_counts() -> None:
    engine = _engine()
    for rows in (1, 4, 4):
        response = await engine.infer("sim", "", _request(rows))
        assert response.id == f"r{rows}"
        assert response.model_version == "1"
        (out,) = response.outputs
        assert np.array_equal(to_numpy(out), to_numpy(_request(rows).inputs[0]) * 2)
    stats = engine.stats["sim"].message()
    assert stats.inference_count == 9
    assert stats.execution_count == 3
    assert stats.inference_stats.success.count == 3
    assert stats.inference_stats.queue.count == 3
    assert stats.inference_stats.compute_infer.count == 3
    assert {b.batch_size: b.compute_infer.count for b in stats.batch_stats} == {1: 1, 4: 2}
    assert stats.last_inference > 0
    assert engine.metrics.counter("nv_inference_request_success", "sim") == 3
    assert engine.metrics.counter("nv_inference_count", "sim") == 9
    assert engine.metrics.counter("nv_inference_exec_count", "sim") == 3
    assert _sample(engine, "simpod_batch_size_count", model="sim") == 3
    assert _sample(engine, "nv_inference_pending_request_count", model="sim") == 0


async def test_unknown_model_and_version_are_not_found() -> None:
    engine = _engine()
    for name, version in (("nope", ""), ("sim", "2")):
        with pytest.raises(SimError) as info:
            await engine.infer(name, version, _request(1))
        assert info.value.code is Code.NOT_FOUND
    assert engine.model("sim", "1").name == "sim"


async def test_invalid_request_is_rejected_and_counted() -> None:
    engine = _engine()
    with pytest.raises(SimError) as info:
        await engine.infer("sim", "", _request(9))
    assert info.value.code is Code.INVALID_ARGUMENT
    assert engine.metrics.counter("nv_inference_request_failure", "sim", "REJECTED") == 1
    assert engine.stats["sim"].message().inference_stats.fail.count == 1


async def test_error_rate_one_fails_every_batch_with_internal() -> None:
    engine = _engine(Faults(error_rate=1.0))
    for _ in range(3):
        with pytest.raises(SimError) as info:
            await engine.infer("sim", "", _request(2))
        assert info.value.code is Code.INTERNAL
    assert engine.metrics.counter("nv_inference_request_failure", "sim", "BACKEND") == 3
    assert engine.stats["sim"].message().execution_count == 0


async def test_stalled_request_waits_until_cancelled() -> None:
    engine = _engine(Faults(stall_rate=1.0))
    task = asyncio.create_task(engine.infer("sim", "", _request(1)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    assert _sample(engine, "nv_inference_pending_request_count", model="sim") == 1
    assert await engine.drained(0.0)  # a stall does not hold up draining
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _sample(engine, "nv_inference_pending_request_count", model="sim") == 0
    assert engine.metrics.counter("nv_inference_request_failure", "sim", "CANCELED") == 1


async def test_not_ready_before_start_and_while_draining() -> None:
    engine = Engine(
        build_models("sim", 8, False), devices=1, fixed_ms=0, per_row_ms=0, faults=Faults()
    )
    assert not engine.ready
    assert not engine.model_ready("sim")
    with pytest.raises(SimError) as info:
        await engine.infer("sim", "", _request(1))
    assert info.value.code is Code.UNAVAILABLE
    engine.set_started()
    assert engine.ready and engine.model_ready("sim") and not engine.model_ready("x")
    assert _sample(engine, "simpod_ready") == 1
    engine.begin_drain()
    assert not engine.ready
    assert _sample(engine, "simpod_ready") == 0
    assert await engine.drained(0.1)
    with pytest.raises(SimError) as info:
        await engine.infer("sim", "", _request(1))
    assert info.value.code is Code.UNAVAILABLE


async def test_device_busy_time_is_reported_per_device() -> None:
    engine = _engine(devices=2)
    await engine.infer("sim", "", _request(1))
    text = engine.metrics.render().decode()
    assert 'simpod_device_busy_seconds_total{device="0"}' in text
    assert 'simpod_device_busy_seconds_total{device="1"}' in text


def test_metrics_use_tritons_names() -> None:
    text = _engine().metrics.render().decode()
    for line in (
        'nv_inference_pending_request_count{model="sim"} 0.0',
        'nv_inference_request_success{model="sim"} 0.0',
        'nv_inference_request_failure{model="sim",reason="BACKEND"} 0.0',
        'nv_inference_count{model="sim"} 0.0',
        'nv_inference_exec_count{model="sim"} 0.0',
        'nv_inference_queue_duration_us{model="sim"} 0.0',
        'simpod_batch_size_bucket{le="8.0",model="sim"} 0.0',
    ):
        assert line in text, line


def test_stats_json_prints_defaults_and_numbers() -> None:
    doc = to_dict(_engine().stats["sim"].message())
    assert doc["inference_count"] == 0
    assert doc["inference_stats"]["success"] == {"count": 0, "ns": 0}
    assert doc["batch_stats"] == []


def test_command_line_defaults_and_flags() -> None:
    cfg = parse_args([])
    assert (cfg.host, cfg.grpc_port, cfg.http_port, cfg.model_name) == (
        "0.0.0.0",
        9001,
        9000,
        "sim",
    )
    assert (cfg.fixed_ms, cfg.per_row_ms, cfg.devices, cfg.max_batch) == (8.0, 0.25, 1, 32)
    assert (cfg.startup_s, cfg.faults, cfg.seed, cfg.identity_models) == (
        0.0,
        Faults(),
        None,
        False,
    )
    cfg = parse_args(
        [
            "--devices",
            "4",
            "--max-batch",
            "64",
            "--error-rate",
            "0.5",
            "--stall-rate",
            "0.1",
            "--crash-rate",
            "0.01",
            "--seed",
            "3",
            "--identity-models",
            "--log-level",
            "debug",
            "--fixed-ms",
            "2",
            "--per-row-ms",
            "0.1",
            "--startup-s",
            "1.5",
            "--model-name",
            "m",
        ]
    )
    assert cfg.devices == 4 and cfg.max_batch == 64 and cfg.seed == 3
    assert cfg.faults == Faults(0.5, 0.1, 0.01)
    assert cfg.identity_models and cfg.log_level == "DEBUG" and cfg.model_name == "m"
    assert (cfg.fixed_ms, cfg.per_row_ms, cfg.startup_s) == (2.0, 0.1, 1.5)


@pytest.mark.parametrize(
    "argv", [["--error-rate", "2"], ["--devices", "0"], ["--fixed-ms", "-1"], ["--max-batch", "0"]]
)
def test_command_line_rejects_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


async def test_shutdown_answers_stalled_requests_with_unavailable() -> None:
    engine = _engine(Faults(stall_rate=1.0))
    task = asyncio.create_task(engine.infer("sim", "", _request(1)))
    for _ in range(5):
        await asyncio.sleep(0)
    engine.begin_drain()
    assert engine.abort_stalled() == 1
    with pytest.raises(SimError) as info:
        await task
    assert info.value.code is Code.UNAVAILABLE
    assert _sample(engine, "nv_inference_pending_request_count", model="sim") == 0
