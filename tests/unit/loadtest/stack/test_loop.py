"""``loadtest stack`` (``make run``): how the loop's parts are pointed at each other."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from autoscaler.config import parse_config as parse_autoscaler_config
from gateway.config import parse_config as parse_gateway_config
from loadtest.cli import build_parser
from loadtest.commands import options
from loadtest.stack.loop import LoopConfig, autoscaler_config, gateway_model, trace_command
from loadtest.stack.simpod_args import SimPod


def test_the_gateway_finds_its_pods_through_the_kubeconfig_never_static_endpoints() -> None:
    config = LoopConfig(kubeconfig=Path("/tmp/k"))
    gateway = parse_gateway_config({"models": [gateway_model(config)]})
    [model] = gateway.models
    assert model.endpoints == [] and model.discovery is not None
    assert (model.discovery.namespace, model.discovery.service) == ("models", "sim")
    assert model.discovery.kubeconfig == "/tmp/k"


def test_the_autoscaler_sizes_the_deployment_in_capacity_mode() -> None:
    config = LoopConfig(kubeconfig=Path("/tmp/k"), max_replicas=5, latency_target_ms=80)
    parsed = parse_autoscaler_config(autoscaler_config(config))
    [model] = parsed.models
    assert (model.deployment_name, parsed.kubernetes.namespace) == ("sim", "models")
    assert parsed.kubernetes.kubeconfig == "/tmp/k"
    assert model.scaling.mode == "capacity" and model.scaling.max_replicas == 5
    assert model.scaling.latency_target_s == pytest.approx(0.08)


def test_the_printed_trace_steps_to_about_three_pods_of_load() -> None:
    config = LoopConfig()  # F 20 ms, c 2 ms/row, batches of 16: ~308 rows/s a pod
    words = shlex.split(trace_command(config))
    peak = float(words[words.index("--peak-rate") + 1])
    assert 2.5 * config.pod.limit_rows_s <= peak <= 3.5 * config.pod.limit_rows_s
    assert "http://localhost:8000" in words
    build_parser().parse_args(words[1:])  # a command line loadtest accepts


def test_a_pod_s_limit_is_full_batches_on_every_device() -> None:
    assert SimPod(20.0, 2.0, 16).limit_rows_s == pytest.approx(16 / 0.052)
    assert SimPod(8.0, 0.25, 32, devices=2).limit_rows_s == pytest.approx(4000.0)
    assert SimPod().limit_rows_s == float("inf")


def test_the_stack_command_builds_the_loop_config() -> None:
    args = build_parser().parse_args(["stack", "--pods", "2", "--startup-s", "0.5"])
    config = options.config_from(args, LoopConfig)
    assert (config.pods, config.startup_s, config.fixed_ms, config.max_batch) == (2, 0.5, 20.0, 16)
