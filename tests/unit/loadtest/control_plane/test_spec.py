"""A Deployment's annotations over the control plane's defaults."""

from __future__ import annotations

import pytest

from loadtest.control_plane.spec import Defaults, template_of
from loadtest.kube_api.objects import deployment
from loadtest.stack.simpod_args import SimPod

DEFAULTS = Defaults(SimPod(fixed_ms=8.0, per_row_ms=0.25, startup_s=1.0), grace_s=10.0)


def test_a_deployment_without_annotations_gets_the_defaults() -> None:
    t = template_of(deployment("sim", 1, {"app": "sim"}), DEFAULTS)
    assert (t.deployment, t.service, dict(t.labels)) == ("sim", "sim", {"app": "sim"})
    assert t.pod == DEFAULTS.pod and t.grace_s == 10.0


def test_annotations_set_cost_shape_service_args_and_the_template_grace_period() -> None:
    obj = deployment("sim", 1, {"app": "sim"})
    obj["metadata"]["annotations"] = {
        "sim.loadtest/fixed-ms": "20",
        "sim.loadtest/max-batch": "16",
        "sim.loadtest/service": "sim-svc",
        "other/ignored": "x",
    }
    obj["spec"]["template"]["metadata"]["annotations"] = {
        "sim.loadtest/fixed-ms": "30",  # the template's wins
        "sim.loadtest/args": "--error-rate 0.1",
    }
    obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 3
    t = template_of(obj, DEFAULTS)
    assert (t.pod.fixed_ms, t.pod.per_row_ms, t.pod.max_batch) == (30.0, 0.25, 16)
    assert t.service == "sim-svc" and t.grace_s == 3.0
    assert t.args()[-2:] == ["--error-rate", "0.1"]


def test_an_annotation_that_does_not_parse_is_an_error() -> None:
    obj = deployment("sim", 1, {"app": "sim"})
    obj["metadata"]["annotations"] = {"sim.loadtest/devices": "two"}
    with pytest.raises(ValueError):
        template_of(obj, DEFAULTS)
