"""The autoscaler's configuration: a YAML file validated at load into a frozen object."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from autoscaler.sharing import Member, deployment_spec, set_fields_of
from autoscaler.spec import ScalingSpec

__all__ = [
    "Actuation",
    "AutoscalerConfig",
    "ConfigError",
    "KubernetesSettings",
    "LeaderElectionSettings",
    "ModelScaling",
    "ServerSettings",
    "load_config",
    "parse_config",
    "shared_specs",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
Port = Annotated[int, Field(ge=0, le=65535)]
_SPEC_FIELDS = {f.name for f in dataclasses.fields(ScalingSpec)}
_SPEC = TypeAdapter(ScalingSpec)
# ``patch``: the autoscaler patches the Deployment's scale. ``keda``: it only decides (logged,
# exported, served to KEDA's external scaler as the metric); KEDA's HPA owns spec.replicas.
Actuation = Literal["patch", "keda"]


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the field and the reason."""


class ServerSettings(BaseModel):
    model_config = _FROZEN

    host: str = "0.0.0.0"
    grpc_port: Port = 8090  # LoadReports from the gateways
    metrics_port: Port = 8091


class KubernetesSettings(BaseModel):
    model_config = _FROZEN

    namespace: Annotated[str, Field(min_length=1)] = "default"
    kubeconfig: str | None = None  # None: in-cluster config
    request_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    scale_resync_s: Annotated[float, Field(gt=0)] = 30.0  # re-read a scale kept this long


class LeaderElectionSettings(BaseModel):
    """A coordination.k8s.io/v1 Lease, so two autoscaler replicas never act at once."""

    model_config = _FROZEN

    enabled: bool = True
    lease_name: Annotated[str, Field(min_length=1)] = "inference-autoscaler"
    identity: str | None = None  # None: host name and pid
    lease_duration_s: Annotated[float, Field(gt=0)] = 15.0
    renew_deadline_s: Annotated[float, Field(gt=0)] = 10.0
    retry_period_s: Annotated[float, Field(gt=0)] = 2.0


class ModelScaling(BaseModel):
    """One model: the Deployment that serves it and the decider's spec."""

    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1)]
    deployment: str | None = None  # None: the model's name
    namespace: str | None = None  # None: kubernetes.namespace
    actuation: Actuation | None = None  # None: the top-level actuation
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    # The scaling fields the config wrote (a Deployment of several models combines those).
    _scaling_set: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="wrap")
    @classmethod
    def _note_set(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, ModelScaling):
            return model
        raw = data.get("scaling") if isinstance(data, dict) else None
        written = frozenset(raw) if isinstance(raw, dict) else set_fields_of(model.scaling)
        model._scaling_set = written
        return model

    @field_validator("scaling", mode="before")
    @classmethod
    def _spec(cls, value: Any) -> ScalingSpec:
        if isinstance(value, ScalingSpec):
            return value
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of scaling parameters")
        unknown = sorted(set(value) - _SPEC_FIELDS)
        if unknown:
            raise ValueError(f"unknown parameters {unknown}")
        spec = _SPEC.validate_python(value)
        for field in dataclasses.fields(spec):  # NaN passes every comparison check: refuse it
            number = getattr(spec, field.name)
            if isinstance(number, float) and not math.isfinite(number):
                raise ValueError(f"{field.name} must be a finite number, got {number}")
        return spec

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.name

    @property
    def scaling_set(self) -> frozenset[str]:
        """The scaling fields written in the model's config (built in code: the non-defaults)."""
        return self._scaling_set

    def actuation_or(self, default: Actuation) -> Actuation:
        """The model's actuation, else ``default`` (the top-level one)."""
        return self.actuation or default


DeploymentKey = tuple[str, str]  # (namespace, name)


def shared_specs(
    models: list[ModelScaling], namespace: str, actuation: Actuation
) -> dict[DeploymentKey, ScalingSpec]:
    """Each Deployment's spec, its models' combined (``autoscaler.sharing``); ValueError naming
    the models and the field where the models of one Deployment contradict each other."""
    groups: dict[DeploymentKey, list[ModelScaling]] = {}
    for m in models:
        groups.setdefault((m.namespace or namespace, m.deployment_name), []).append(m)
    specs = {}
    for (ns, name), group in groups.items():
        where = f"{ns}/{name}"
        first = group[0]
        for other in group[1:]:
            a, b = first.actuation_or(actuation), other.actuation_or(actuation)
            if a != b:
                raise ValueError(
                    f"models '{first.name}' and '{other.name}' share the Deployment {where} "
                    f"but their actuation is {a} and {b}: one Deployment has one owner"
                )
        members = [Member(m.name, m.scaling, m.scaling_set) for m in group]
        specs[(ns, name)] = deployment_spec(members, where)
    return specs


class AutoscalerConfig(BaseModel):
    """The whole configuration; never changed in place."""

    model_config = _FROZEN

    server: ServerSettings = Field(default_factory=ServerSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    tick_ms: Annotated[int, Field(gt=0)] = 500
    report_ttl_ms: Annotated[int, Field(gt=0)] = 1000  # a report counts this long
    missing_hold_s: Annotated[float, Field(ge=0)] = 60.0  # an expired gateway holds scale-down
    dry_run: bool = False
    actuation: Actuation = "patch"  # every model's, unless the model sets its own
    models: Annotated[list[ModelScaling], Field(min_length=1)]

    @field_validator("models")
    @classmethod
    def _unique(cls, value: list[ModelScaling], info: ValidationInfo) -> list[ModelScaling]:
        names = [m.name for m in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"model name '{name}' appears more than once")
        kube = info.data.get("kubernetes")
        namespace = kube.namespace if isinstance(kube, KubernetesSettings) else "default"
        shared_specs(value, namespace, info.data.get("actuation", "patch"))
        return value

    def deployment_of(self, model: ModelScaling) -> DeploymentKey:
        return model.namespace or self.kubernetes.namespace, model.deployment_name

    def deployment_specs(self) -> dict[DeploymentKey, ScalingSpec]:
        """``shared_specs`` of this config (ValueError: an override made it contradict)."""
        return shared_specs(self.models, self.kubernetes.namespace, self.actuation)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_config(doc: Any, source: str = "config") -> AutoscalerConfig:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'models' list")
    try:
        return AutoscalerConfig.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path) -> AutoscalerConfig:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML builds nested collections recursively
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    return parse_config(doc, str(path))
