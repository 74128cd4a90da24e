"""The config the gateway serves is the pod's own, every field kept, with the gateway's
max_batch_size and dynamic_batching in force; a pod's instances are counted as Triton does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.protobuf import json_format

from gateway.config import DynamicBatchingSettings, ModelSettings
from gateway.models.runtime import pod_devices, pod_slots
from gateway.models.spec import ModelSpec
from protos import model_config_pb2 as mc
from protos.json_format import message_to_dict

GPU, CPU = mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_CPU
AUTO, MODEL = mc.ModelInstanceGroup.KIND_AUTO, mc.ModelInstanceGroup.KIND_MODEL
# The gateway's own batching, as a model's settings give it.
BATCHING = DynamicBatchingSettings(
    max_queue_delay_microseconds=2000,
    preferred_batch_size=[8, 16],
    priority_levels=2,
    default_priority_level=2,
)


def triton_config() -> mc.ModelConfig:
    """A config as Triton serves one for a Python-backend model: fields the gateway has no use
    for (version policy, optimization, parameters, file names, warmup) and Triton's own
    dynamic batcher."""
    config = mc.ModelConfig(
        name="sim",
        backend="python",
        runtime="",
        max_batch_size=32,
        default_model_filename="model.py",
    )
    config.version_policy.latest.num_versions = 2
    config.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[16])
    config.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[16])
    config.optimization.priority = mc.ModelOptimizationPolicy.PRIORITY_MAX
    config.optimization.input_pinned_memory.enable = True
    config.optimization.cuda.graphs = True
    config.parameters["FIXED_MS"].string_value = "8"
    config.parameters["EXECUTE_ENV"].string_value = "$$TRITON_MODEL_DIRECTORY/env.tar.gz"
    config.cc_model_filenames["8.6"] = "model_sm86.plan"
    config.metric_tags["team"] = "vision"
    warmup = config.model_warmup.add(name="zeros", batch_size=4, count=1)
    warmup.inputs["INPUT0"].data_type = mc.TYPE_FP32
    warmup.inputs["INPUT0"].dims.extend([16])
    warmup.inputs["INPUT0"].zero_data = True
    config.response_cache.enable = True
    config.dynamic_batching.max_queue_delay_microseconds = 100  # Triton's own: off in force
    config.dynamic_batching.preserve_ordering = True
    config.instance_group.add(name="sim_gpu", kind=GPU, count=2, gpus=[0, 1])
    config.instance_group.add(name="sim_cpu", kind=CPU, count=1)
    return config


def as_served(config: mc.ModelConfig) -> dict[str, Any]:
    """A config as the HTTP /config answer holds it, once parsed."""
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(message_to_dict(config)))
    return parsed


def test_http_config_keeps_every_field_of_the_pods_but_the_two_in_force() -> None:
    pod = triton_config()
    served = as_served(ModelSpec.from_config("gw-sim", pod, 16).config(BATCHING))
    expected = as_served(pod)
    overridden = {"name", "max_batch_size", "dynamic_batching"}
    assert {k: v for k, v in served.items() if k not in overridden} == {
        k: v for k, v in expected.items() if k not in overridden
    }
    assert served["version_policy"] == {"latest": {"num_versions": 2}}
    assert served["default_model_filename"] == "model.py"
    assert served["parameters"]["FIXED_MS"] == {"string_value": "8"}
    assert served["optimization"]["priority"] == "PRIORITY_MAX"
    assert served["optimization"]["input_pinned_memory"] == {"enable": True}
    assert served["model_warmup"][0]["inputs"]["INPUT0"]["dims"] == [16]  # int64 as numbers
    assert served["instance_group"][0]["gpus"] == [0, 1]
    # The values in force: the gateway's name, its lower max_batch_size and its batching.
    assert (served["name"], served["max_batch_size"]) == ("gw-sim", 16)
    batching = served["dynamic_batching"]
    assert batching["max_queue_delay_microseconds"] == 2000
    assert batching["preferred_batch_size"] == [8, 16]
    assert (batching["priority_levels"], batching["default_priority_level"]) == (2, 2)
    assert batching["preserve_ordering"] is False  # the pod's batcher is not the one in force


def test_grpc_config_is_the_pods_message_with_the_values_in_force() -> None:
    pod = triton_config()
    served = ModelSpec.from_config("gw-sim", pod, 16).config(BATCHING)
    expected = mc.ModelConfig()
    expected.CopyFrom(pod)
    expected.name, expected.max_batch_size = "gw-sim", 16
    expected.dynamic_batching.CopyFrom(
        mc.ModelDynamicBatching(
            preferred_batch_size=[8, 16],
            max_queue_delay_microseconds=2000,
            priority_levels=2,
            default_priority_level=2,
            default_queue_policy=mc.ModelQueuePolicy(),
        )
    )
    assert served == expected
    assert served.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )


def test_without_the_gateways_batching_no_dynamic_batching_is_shown() -> None:
    served = as_served(ModelSpec.from_config("sim", triton_config()).config(None))
    assert "dynamic_batching" not in served
    assert served["parameters"]["FIXED_MS"] == {"string_value": "8"}


def test_a_config_read_from_a_pods_json_keeps_its_fields() -> None:
    """What the HTTP backend parses from a pod's /config (int64 as numbers, as Triton prints
    them) is the pod's config whole."""
    pod = triton_config()
    text = orjson.dumps(message_to_dict(pod))
    parsed = json_format.Parse(text, mc.ModelConfig(), ignore_unknown_fields=True)
    assert parsed == pod


@pytest.mark.parametrize("choice", ["sequence_batching", "ensemble_scheduling"])
def test_a_pods_sequence_batching_or_ensemble_stays(choice: str) -> None:
    pod = triton_config()
    if choice == "sequence_batching":
        pod.sequence_batching.max_sequence_idle_microseconds = 5_000_000
        pod.sequence_batching.direct.SetInParent()
    else:
        pod.ensemble_scheduling.step.add(model_name="pre", model_version=-1)
    served = ModelSpec.from_config("sim", pod).config(BATCHING)
    assert served.WhichOneof("scheduling_choice") == choice
    assert getattr(served, choice) == getattr(pod, choice)


def config_of(*groups: dict[str, Any]) -> mc.ModelConfig:
    config = mc.ModelConfig(name="m", max_batch_size=8)
    for group in groups:
        config.instance_group.add(**group)
    return config


@pytest.mark.parametrize(
    ("groups", "instances"),
    [
        ([{"kind": GPU, "count": 2, "gpus": [0, 1]}], 4),  # count on each GPU listed
        ([{"kind": GPU, "count": 1, "gpus": [0, 1, 2]}], 3),
        ([{"kind": AUTO, "count": 2, "gpus": [3]}], 2),  # AUTO with GPUs listed is KIND_GPU
        ([{"kind": GPU, "count": 2}], 2),  # no GPUs listed (not Triton): count
        ([{"kind": CPU, "count": 3, "gpus": [0, 1]}], 3),  # a CPU group's gpus mean nothing
        ([{"kind": MODEL, "count": 2}], 2),
        ([{"kind": GPU, "count": 2, "gpus": [0, 1]}, {"kind": CPU, "count": 1}], 5),
        ([{"kind": GPU, "count": 2, "gpus": [0]}, {"kind": GPU, "count": 4, "passive": True}], 2),
        ([{"kind": CPU, "count": 0}], 0),
    ],
)
def test_instances_are_counted_as_triton_places_them(
    groups: list[dict[str, Any]], instances: int
) -> None:
    settings = ModelSettings(name="m")
    config = config_of(*groups)
    assert pod_devices(settings, config) == max(1, instances)
    assert pod_slots(settings, config) == (instances + 1 if instances else 2)


def test_a_pods_slots_set_in_the_config_bound_its_devices() -> None:
    config = config_of({"kind": GPU, "count": 2, "gpus": [0, 1]})
    settings = ModelSettings(name="m", max_inflight_per_pod=3)
    assert (pod_slots(settings, config), pod_devices(settings, config)) == (3, 3)
    assert (pod_slots(settings, None), pod_devices(settings, None)) == (3, 1)
