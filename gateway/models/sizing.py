"""How many batches a pod takes (its slots) and runs at once (its devices), from its config."""

from __future__ import annotations

from typing import Any

from gateway.config import ModelSettings
from protos import model_config_pb2 as mc

__all__ = ["DEFAULT_SLOTS", "pod_devices", "pod_slots"]

DEFAULT_SLOTS = 2


def _group_instances(group: Any) -> int:
    """Instances of one instance group, as Triton counts them: ``count`` on each GPU listed
    (a KIND_GPU group, or KIND_AUTO with GPUs listed), else ``count``; none for a passive
    group (loaded, but Triton schedules nothing on it). A KIND_GPU group without ``gpus`` means
    ``count`` on every GPU the pod sees, a number its config does not tell: Triton lists them
    in the config it serves, so only other runtimes leave it out, and ``count`` is taken."""
    if group.count <= 0 or group.passive:
        return 0
    on_gpus = group.kind in (mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_AUTO)
    return int(group.count) * (len(group.gpus) if on_gpus and group.gpus else 1)


def _reported_devices(pod_config: Any) -> int:
    if pod_config is None:
        return 0
    return sum(_group_instances(g) for g in pod_config.instance_group)


def pod_slots(settings: ModelSettings, pod_config: Any) -> int:
    """In-flight batches per pod: the config's, else one per device the pod reports plus one
    waiting in the pod's own queue (so a device never idles while its next batch crosses the
    network), else 2."""
    if settings.max_inflight_per_pod is not None:
        return settings.max_inflight_per_pod
    devices = _reported_devices(pod_config)
    return devices + 1 if devices else DEFAULT_SLOTS


def pod_devices(settings: ModelSettings, pod_config: Any) -> int:
    """Batches a pod runs at once: the devices it reports (its instance groups), else 1, never
    more than its slots."""
    return max(1, min(pod_slots(settings, pod_config), _reported_devices(pod_config) or 1))
