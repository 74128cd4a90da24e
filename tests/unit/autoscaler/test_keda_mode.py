"""The ``keda`` actuation: configured globally or per model; decided and counted, never patched."""

from __future__ import annotations

import pytest

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.config import ConfigError, parse_config
from autoscaler.controller import KEDA, PATCH, Controller, Target
from autoscaler.decider import Decision
from autoscaler.main import _parse, _targets, _with_flags
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.spec import ScalingSpec


def test_actuation_is_global_with_a_per_model_override() -> None:
    config = parse_config(
        {"actuation": "keda", "models": [{"name": "a"}, {"name": "b", "actuation": "patch"}]}
    )
    assert [(t.model, t.actuation) for t in _targets(config)] == [("a", KEDA), ("b", PATCH)]
    default = parse_config({"models": [{"name": "a"}, {"name": "b", "actuation": "keda"}]})
    assert [t.actuation for t in _targets(default)] == [PATCH, KEDA]


def test_an_unknown_actuation_is_refused() -> None:
    with pytest.raises(ConfigError, match="actuation"):
        parse_config({"models": [{"name": "a", "actuation": "hpa"}]})


class Scaler:
    def __init__(self) -> None:
        self.applied: list[tuple[str, int]] = []

    async def current(self, target: Target, *, refresh: bool = False) -> int:
        return 0

    async def apply(self, target: Target, decision: Decision) -> None:
        self.applied.append((target.model, decision.desired))


async def test_keda_targets_are_decided_but_only_patch_targets_are_patched() -> None:
    spec = ScalingSpec(min_replicas=0, target_per_pod=2)
    store = ReportStore(ttl_s=10.0, missing_hold_s=0)
    for model in ("k", "p"):
        store.record(GatewayReport(replica_id="gw", model=model, queued_rows=4), 1.0)
    metrics = AutoscalerMetrics()
    scaler = Scaler()
    controller = Controller(
        targets=[Target("k", "ns", "k", spec, KEDA), Target("p", "ns", "p", spec)],
        store=store,
        metrics=metrics,
        scaler=scaler,
        clock=lambda: 2.0,
    )
    decisions = await controller.tick()
    assert decisions["k"].desired > 0 and decisions["p"].desired > 0
    assert scaler.applied == [("p", decisions["p"].desired)]
    value = metrics.registry.get_sample_value
    assert value("autoscaler_scale_changes_total", {"model": "k", "result": "keda"}) == 1.0
    assert value("autoscaler_scale_changes_total", {"model": "p", "result": "patched"}) == 1.0
    assert value("autoscaler_desired_replicas", {"model": "k"}) == decisions["k"].desired


def test_the_actuation_flag_sets_the_top_level_actuation() -> None:
    config = parse_config({"models": [{"name": "a"}, {"name": "b", "actuation": "patch"}]})
    flagged = _with_flags(config, _parse(["--config", "x.yaml", "--actuation", "keda"]))
    assert [t.actuation for t in _targets(flagged)] == [KEDA, PATCH]
    assert _with_flags(config, _parse(["--config", "x.yaml"])).actuation == PATCH
