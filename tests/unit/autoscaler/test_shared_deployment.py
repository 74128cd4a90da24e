"""Two models served by one Deployment, through the config, the controller (one decision, one
patch), its log, metrics, /status, ``autoscaler explain`` and KEDA's scaler; on a fake clock."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.config import ConfigError, parse_config
from autoscaler.controller import Controller, Target
from autoscaler.decider import Decision, Reason
from autoscaler.explain import describe
from autoscaler.keda import ExternalScaler
from autoscaler.main import _parse, _targets, _with_flags, main
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.spec import ScalingSpec
from autoscaler.status import AutoscalerStatus
from protos import externalscaler_pb2 as pb
from protos.logs import JsonFormatter
from tests.fakes.clock import Clock

T0 = 2_000.0
SPEC = ScalingSpec(target_per_pod=10, target_utilisation=1.0, restart_hold_s=0, max_replicas=9)


def shared(**scaling: Any) -> dict[str, Any]:
    """A config: models a and b on the Deployment ``shared``, c on its own."""
    return {
        "kubernetes": {"namespace": "models"},
        "models": [
            {"name": "a", "deployment": "shared", "scaling": {"max_replicas": 6, **scaling}},
            {"name": "b", "deployment": "shared", "scaling": {"min_replicas": 2}},
            {"name": "c"},
        ],
    }


def test_the_config_combines_the_bounds_of_a_deployments_models() -> None:
    config = parse_config(shared())
    specs = config.deployment_specs()
    assert set(specs) == {("models", "shared"), ("models", "c")}
    together = specs["models", "shared"]
    assert (together.min_replicas, together.max_replicas) == (2, 6)
    targets = _targets(config)
    assert [t.deployment_spec for t in targets[:2]] == [together] * 2


def test_a_contradictory_config_is_refused_naming_the_models_and_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(shared(max_replicas=1))  # b's floor 2 over a's cap 1
    message = str(caught.value)
    assert message.startswith("config: models: ")
    assert "min_replicas 2 (model 'b')" in message and "max_replicas 1 (model 'a')" in message
    doc = shared()
    doc["models"][1]["scaling"]["stable_window_s"] = 30
    doc["models"][0]["scaling"]["stable_window_s"] = 20
    with pytest.raises(ConfigError, match="'a' and 'b' share the Deployment models/shared"):
        parse_config(doc)


def test_the_same_deployment_name_in_two_namespaces_is_two_deployments() -> None:
    doc = shared(min_replicas=5)
    doc["models"][1]["namespace"] = "other"
    assert len(parse_config(doc).deployment_specs()) == 3


def test_an_actuation_override_that_splits_a_deployment_is_refused(tmp_path: Path) -> None:
    doc = shared()
    doc["models"][1]["actuation"] = "patch"
    config = parse_config(doc)
    flagged = _with_flags(config, _parse(["--config", "x.yaml", "--actuation", "keda"]))
    with pytest.raises(ValueError, match="actuation is keda and patch"):
        flagged.deployment_specs()
    path = tmp_path / "autoscaler.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "--actuation", "keda"])
    assert exited.value.code == 2


class Scaler:
    """Every Deployment at one replica until patched; records each patch."""

    def __init__(self) -> None:
        self.replicas: dict[str, int] = {}
        self.patches: list[tuple[str, int]] = []

    async def current(self, target: Target, *, refresh: bool = False) -> int:
        return self.replicas.get(target.deployment, 1)

    async def apply(self, target: Target, decision: Decision) -> None:
        self.patches.append((target.deployment, decision.desired))
        self.replicas[target.deployment] = decision.desired


class Loop:
    """Models a and b on the Deployment ``shared``, c on ``c``."""

    def __init__(self) -> None:
        self.clock = Clock(T0)
        self.store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
        self.metrics = AutoscalerMetrics()
        self.scaler = Scaler()
        targets = [Target(m, "models", d, SPEC) for m, d in (("a", "shared"), ("b", "shared"))]
        self.controller = Controller(
            targets=[*targets, Target("c", "models", "c", SPEC)],
            store=self.store,
            metrics=self.metrics,
            scaler=self.scaler,
            clock=self.clock,
        )
        self.seq = 0

    def report(self, model: str, rows: int) -> None:
        self.seq += 1
        report = GatewayReport(
            replica_id="gw-1", model=model, seq=self.seq, inflight_rows=rows, ready_endpoints=1
        )
        self.store.record(report, self.clock.now)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


async def test_the_models_of_one_deployment_are_sized_together_and_patched_once() -> None:
    loop = Loop()
    for model, rows in (("a", 15), ("b", 15), ("c", 15)):  # 1.5 pods each
        loop.report(model, rows)
    decisions = await loop.controller.tick()
    assert loop.scaler.patches == [("shared", 3), ("c", 2)], "one patch for a and b: 1.5 + 1.5"
    assert decisions["a"] is decisions["b"] and decisions["a"].desired == 3
    assert loop.controller.models_with("b") == ("a", "b")
    assert loop.value("autoscaler_model_demand_pods", model="a") == 1.5
    assert loop.value("autoscaler_desired_replicas", model="b") == 3
    info = {"model": "b", "namespace": "models", "deployment": "shared"}
    assert loop.value("autoscaler_model_deployment_info", **info) == 1
    for model in ("a", "b"):
        patched = {"model": model, "result": "patched"}
        assert loop.value("autoscaler_scale_changes_total", **patched) == 1


async def test_a_silent_model_holds_its_deployments_scale_down() -> None:
    loop = Loop()
    loop.scaler.replicas["shared"] = 4
    loop.report("a", 5)  # b never reports: its demand is unknown
    decisions = await loop.controller.tick()
    assert decisions["a"].reason is Reason.HOLD_MISSING_MODEL and decisions["a"].desired == 4
    assert loop.scaler.patches == []


async def test_the_decision_line_says_which_models_it_came_from(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = Loop()
    caplog.set_level(logging.INFO, logger="autoscaler.controller")
    loop.report("a", 15)
    loop.report("b", 25)
    await loop.controller.tick()
    (line,) = [r for r in caplog.records if getattr(r, "deployment", "") == "models/shared"]
    doc = orjson.loads(JsonFormatter().format(line))
    assert doc["message"].startswith("deployment models/shared: 1 -> 4 (")
    assert "; a 1.50; b 2.50" in doc["message"]
    assert doc["demand_pods"] == 4.0 and doc["silent_models"] == []
    assert [(m["model"], m["pods"]) for m in doc["models"]] == [("a", 1.5), ("b", 2.5)]
    assert doc["models"][1]["load"]["inflight_rows"] == 25


async def test_status_and_explain_show_the_deployments_decision_under_each_model() -> None:
    loop = Loop()
    loop.report("a", 15)
    loop.report("b", 25)
    await loop.controller.tick()
    doc = AutoscalerStatus(
        controller=loop.controller,
        store=loop.store,
        identity="as-1",
        is_leader=lambda: True,
        dry_run=False,
        clock=loop.clock,
    ).read()
    models = {m["model"]: m for m in doc["models"]}
    assert set(models) == {"a", "b", "c"}
    a, b = models["a"], models["b"]
    assert a["deployment_models"] == b["deployment_models"] == ["a", "b"]
    assert (a["demand_pods"], b["demand_pods"]) == (1.5, 2.5)
    assert a["desired"] == b["desired"] == 4 and a["decisions"] == b["decisions"]
    assert models["c"]["deployment_models"] == ["c"]
    text = describe(orjson.loads(orjson.dumps(doc)), "b", 5)
    assert "sized with a (one Deployment, one decision); this model's demand 2.50 pods" in text
    assert "from models a 1.50, b 2.50 pods (summed)" in text


def _ref(model: str) -> Any:
    return pb.ScaledObjectRef(name="so", namespace="models", scalerMetadata={"model": model})


async def test_keda_answers_for_the_deployment_from_any_of_its_models() -> None:
    loop = Loop()
    keda = ExternalScaler(
        loop.store,
        models=["a", "b", "c"],
        decisions=loop.controller.decisions,
        clock=loop.clock,
        recheck_s=60.0,  # only a report wakes the stream here
        shared={"a": ["a", "b"], "b": ["a", "b"], "c": ["c"]},
    )
    stream = keda.StreamIsActive(_ref("a"), None)
    assert (await asyncio.wait_for(anext(stream), 10)).result is False
    loop.report("b", 3)  # only b has demand: a's trigger (the same Deployment) is active
    keda.notify("b")
    assert (await asyncio.wait_for(anext(stream), 10)).result is True
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    assert keda.active("a") and keda.active("b") and not keda.active("c")
    loop.report("a", 15)
    await loop.controller.tick()
    request = pb.GetMetricsRequest(scaledObjectRef=_ref("b"), metricName="replicas-b")
    reply = await keda.GetMetrics(request, None)
    assert reply.metricValues[0].metricValue == loop.controller.decisions()["a"].desired == 2
