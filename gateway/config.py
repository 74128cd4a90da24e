"""The gateway's configuration: a YAML file validated at load into a frozen object."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.observe.settings import AccessLogSettings, TracingSettings
from gateway.tenants.settings import AuthSettings, TenantSettings, check_tenants
from gateway.tls_settings import BackendTlsSettings, ServerTlsSettings

__all__ = [
    "AccessLogSettings",
    "AutoscalerSettings",
    "BackendTlsSettings",
    "ConfigError",
    "DiscoverySettings",
    "DynamicBatchingSettings",
    "GatewayConfig",
    "ModelSettings",
    "OutlierDetectionSettings",
    "PerTryTimeoutSettings",
    "QueuePolicySettings",
    "RetryBudgetSettings",
    "ServerSettings",
    "ServerTlsSettings",
    "TracingSettings",
    "load_config",
    "parse_config",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Port = Annotated[int, Field(ge=0, le=65535)]
PositiveMs = Annotated[int, Field(gt=0)]
# Fields that Triton's ModelConfig carries (the config endpoints) keep to its integer types.
Int32 = Annotated[int, Field(ge=0, le=2**31 - 1)]
UInt32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
UInt64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
_ENDPOINT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
# The server settings that become gRPC's integer options, which are C ints (seconds as ms).
_GRPC_INTS = {
    "max_request_bytes": 1,
    "grpc_max_connection_age_s": 1000,
    "grpc_max_connection_age_grace_s": 1000,
    "grpc_max_concurrent_streams": 1,
    "grpc_keepalive_time_s": 1000,
    "grpc_keepalive_timeout_s": 1000,
    "grpc_min_ping_interval_s": 1000,
    "grpc_max_ping_strikes": 1,
}
_C_INT_MAX = 2**31 - 1


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the field and the reason."""


class ServerSettings(BaseModel):
    """Listening addresses and request limits."""

    model_config = _FROZEN

    host: str = "0.0.0.0"
    http_port: Port = 8000
    grpc_port: Port = 8001
    metrics_port: Port = 8002
    max_request_bytes: Annotated[int, Field(gt=0)] = 64 * 1024 * 1024
    # Bytes of every request being read, queued and in flight, both front-ends together
    # (gateway.memory_budget); past it a new request is refused at once (429 /
    # RESOURCE_EXHAUSTED). 0: no budget.
    memory_budget_bytes: Annotated[int, Field(ge=0)] = 256 * 1024 * 1024
    probe_interval_ms: PositiveMs = 1000
    # gRPC connections are closed (GOAWAY, then ``grace``) after this age, so clients behind a
    # ClusterIP reconnect and rebalance across gateway replicas.
    grpc_max_connection_age_s: Annotated[float, Field(gt=0)] = 300.0
    grpc_max_connection_age_grace_s: Annotated[float, Field(ge=0)] = 30.0
    # Decode work and gRPC limits. Per request: elements decoded one by one (JSON data, typed
    # contents, BYTES items) and BYTES items, over all inputs; past either, 400 naming it.
    max_decode_elements: Annotated[int, Field(gt=0)] = 16 * 1024 * 1024
    max_bytes_items: Annotated[int, Field(gt=0)] = 1024 * 1024
    # Answers in flight per ModelStreamInfer stream: at the bound the stream is not read on
    # until the client takes an answer (Triton's response pool). Calls at once in the whole
    # server (more: RESOURCE_EXHAUSTED) and streams per connection (more wait in the client).
    grpc_stream_max_inflight: Annotated[int, Field(gt=0)] = 64
    grpc_max_concurrent_rpcs: Annotated[int, Field(gt=0)] = 4096
    grpc_max_concurrent_streams: Annotated[int, Field(gt=0)] = 1024
    # Keepalive: the server pings a quiet connection every ``time`` and closes it unanswered
    # after ``timeout``; a client pinging more often than ``min_ping_interval`` is struck, and
    # after ``max_ping_strikes`` sent GOAWAY (too_many_pings).
    grpc_keepalive_time_s: Annotated[float, Field(gt=0)] = 60.0
    grpc_keepalive_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    grpc_keepalive_permit_without_calls: bool = True
    grpc_min_ping_interval_s: Annotated[float, Field(ge=0)] = 10.0
    grpc_max_ping_strikes: Annotated[int, Field(ge=0)] = 2
    # On SIGTERM both front-ends stop accepting at once and calls in flight get this long to
    # finish; keep it below the pod's terminationGracePeriodSeconds less its preStop sleep.
    drain_grace_s: Annotated[float, Field(ge=0)] = 25.0
    # The REST server (gateway.frontends.http_server): an idle connection closes after
    # ``keepalive``; a request head must arrive within ``head_timeout`` of its first byte and
    # a body within ``body_timeout`` of its head (else 408); a peer that takes none of its
    # answers for ``write_stall`` is dropped; past ``max_connections`` a new one gets 503; a
    # head over ``max_head_bytes`` gets 431; requests parsed ahead of the one being answered
    # pause reading past ``read_ahead_bytes``.
    http_keepalive_s: Annotated[float, Field(gt=0)] = 75.0
    http_head_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    http_body_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    http_write_stall_s: Annotated[float, Field(gt=0)] = 30.0
    http_max_connections: Annotated[int, Field(gt=0)] = 4096
    http_max_head_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    http_read_ahead_bytes: Annotated[int, Field(ge=0)] = 4 * 1024 * 1024
    tls: ServerTlsSettings | None = None  # on both the HTTP and gRPC ports; None: plaintext

    @model_validator(mode="after")
    def _fits_grpc(self) -> ServerSettings:
        """gRPC takes these as C ints: a larger value would stop the server starting."""
        for name, per_unit in _GRPC_INTS.items():
            most, value = _C_INT_MAX / per_unit, getattr(self, name)
            if not value <= most:
                unit = " s (a C int of ms)" if per_unit > 1 else " (a C int)"
                raise ValueError(f"{name} is {value}; gRPC takes at most {most:.10g}{unit}")
        return self


class QueuePolicySettings(BaseModel):
    """Triton's ModelQueuePolicy: a priority level's bound and timeout."""

    model_config = _FROZEN

    max_queue_size: UInt32 = 0
    default_timeout_microseconds: UInt64 = 0
    allow_timeout_override: bool = False
    timeout_action: Literal["REJECT", "DELAY"] = "REJECT"


class DynamicBatchingSettings(BaseModel):
    """Triton's ModelDynamicBatching, plus the gateway's cost-model rule."""

    model_config = _FROZEN

    preferred_batch_size: list[Annotated[int, Field(gt=0, le=2**31 - 1)]] = Field(
        default_factory=list
    )
    max_queue_delay_microseconds: UInt64 = 0
    priority_levels: UInt64 = 0
    default_priority_level: Annotated[int, Field(ge=0)] = 0
    default_queue_policy: QueuePolicySettings = Field(default_factory=QueuePolicySettings)
    priority_queue_policy: dict[int, QueuePolicySettings] = Field(default_factory=dict)
    cost_model: bool = True  # send early when the fitted batch cost says waiting cannot pay off
    target_utilisation: Annotated[float, Field(gt=0, le=1)] = 0.85

    @model_validator(mode="after")
    def _levels(self) -> DynamicBatchingSettings:
        levels = max(1, self.priority_levels)
        if self.default_priority_level > levels:
            raise ValueError(
                f"default_priority_level {self.default_priority_level} is above "
                f"priority_levels {self.priority_levels}"
            )
        for level in self.priority_queue_policy:
            if not 1 <= level <= levels:
                raise ValueError(f"priority_queue_policy has level {level}, outside 1..{levels}")
        return self

    @property
    def levels(self) -> int:
        return max(1, self.priority_levels)

    @property
    def default_level(self) -> int:
        return self.default_priority_level or self.levels  # unset: the lowest

    def queue_policy(self, level: int) -> QueuePolicySettings:
        return self.priority_queue_policy.get(level, self.default_queue_policy)


class DiscoverySettings(BaseModel):
    """Find a model's pods through the EndpointSlices of its Kubernetes Service."""

    model_config = _FROZEN

    namespace: Annotated[str, Field(min_length=1)] = "default"
    service: Annotated[str, Field(min_length=1)]
    port_name: str | None = None  # the EndpointSlice port to use; None: the slice's only port
    kubeconfig: str | None = None  # None: in-cluster config
    watch_timeout_s: Annotated[float, Field(gt=0)] = 300.0  # server-side watch timeout
    silence_timeout_s: Annotated[float, Field(gt=0)] = 360.0  # restart a silent stream
    connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0  # to the API server


class OutlierDetectionSettings(BaseModel):
    """Envoy's consecutive-failure outlier detection (its defaults)."""

    model_config = _FROZEN

    consecutive_failures: Annotated[int, Field(gt=0)] = 5
    base_ejection_s: Annotated[float, Field(gt=0)] = 30.0  # times the pod's ejection count
    max_ejection_s: Annotated[float, Field(gt=0)] = 300.0
    max_ejected_percent: Annotated[float, Field(ge=0, le=100)] = 10.0  # at least one may be
    interval_s: Annotated[float, Field(gt=0)] = 10.0


class RetryBudgetSettings(BaseModel):
    """Retries in flight at once: a percentage of active batches, with a floor (Envoy's)."""

    model_config = _FROZEN

    percent: Annotated[float, Field(ge=0, le=100)] = 20.0
    min_retries: Annotated[int, Field(ge=0)] = 3


class PerTryTimeoutSettings(BaseModel):
    """How long one try of a batch on one pod may take before it goes to another pod:
    ``factor`` times the cost model's predicted time for it (its wait on the pod included), at
    least ``min_ms``. 0 (or no fit yet): only the request's deadline bounds a try."""

    model_config = _FROZEN

    factor: Annotated[float, Field(ge=0)] = 5.0
    min_ms: PositiveMs = 1000


class ModelSettings(BaseModel):
    """One model the gateway serves and the pods that serve it."""

    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1, pattern=r"^[^/\s]+$")]
    endpoints: list[str] = Field(default_factory=list)
    pod_model: str | None = None
    # The pods' wire: v2 gRPC, or v2 REST with binary tensors (then endpoints and the
    # discovery port are the pods' HTTP ones).
    backend_protocol: Literal["grpc", "http"] = "grpc"
    backend_tls: BackendTlsSettings | None = None  # None: plaintext to the pods
    default_timeout_ms: PositiveMs = 30_000
    connect_timeout_ms: PositiveMs = 2_000
    max_batch_size: Int32 | None = None
    max_inflight_per_pod: Annotated[int, Field(gt=0)] | None = None
    # Reject at once (429) a request whose estimated queue wait exceeds this; 0 = only when the
    # wait would pass the request's own deadline.
    max_queue_wait_ms: Annotated[int, Field(ge=0)] = 1000
    fair_share: bool = True  # tenants share the queue by weight; false: first come, first served
    dynamic_batching: DynamicBatchingSettings | None = None
    discovery: DiscoverySettings | None = None  # instead of (or beside) static endpoints
    outlier_detection: OutlierDetectionSettings = Field(default_factory=OutlierDetectionSettings)
    retry_budget: RetryBudgetSettings = Field(default_factory=RetryBudgetSettings)
    per_try_timeout: PerTryTimeoutSettings = Field(default_factory=PerTryTimeoutSettings)

    @field_validator("endpoints")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for i, endpoint in enumerate(value):
            match = _ENDPOINT.match(endpoint)
            if match is None or not 0 < int(match.group(2)) < 65536:
                raise ValueError(f"endpoint {i} '{endpoint}' is not host:port")
        return value

    @property
    def target_model(self) -> str:
        """The model's name on its pods."""
        return self.pod_model or self.name


class AutoscalerSettings(BaseModel):
    """Where the gateway streams its load reports (the companion autoscaler): one ``address``,
    or every replica behind a headless Service, found through its EndpointSlices."""

    model_config = _FROZEN

    address: Annotated[str, Field(min_length=1)] | None = None  # one autoscaler's gRPC target
    discovery: DiscoverySettings | None = None  # instead: stream to every replica it finds
    report_interval_ms: Annotated[int, Field(gt=0)] = 250
    replica_id: str | None = None  # None: the host name (the pod name) and the pid
    # host:port of this replica's HTTP port as the other replicas reach it, told to them through
    # the coordinator so that a replica owning no pod sends its requests here (None: $POD_IP
    # with server.http_port when POD_IP is set, else none; "" never)
    peer_address: str | None = None
    # The gateway's own Service (its HTTP port): while no autoscaler has listed the replicas
    # for peers_stale_s, the ready replicas it lists stand in for that list
    # (gateway/discovery/peers.py). None: the last list is kept.
    replicas_discovery: DiscoverySettings | None = None
    peers_stale_s: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _one_source(self) -> AutoscalerSettings:
        if (self.address is None) == (self.discovery is None):
            raise ValueError(
                "give exactly one of 'address' (host:port of one autoscaler) or 'discovery' "
                "(the headless Service of every autoscaler replica)"
            )
        return self


class GatewayConfig(BaseModel):
    """The whole configuration; replaced as a whole, never changed in place."""

    model_config = _FROZEN

    server: ServerSettings = Field(default_factory=ServerSettings)
    autoscaler: AutoscalerSettings | None = None
    access_log: AccessLogSettings = Field(default_factory=AccessLogSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    tenants: list[TenantSettings] = Field(default_factory=list)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    models: Annotated[list[ModelSettings], Field(min_length=1)]

    @model_validator(mode="after")
    def _tenants(self) -> GatewayConfig:
        check_tenants(self.tenants, self.auth)
        return self

    @field_validator("models")
    @classmethod
    def _unique(cls, value: list[ModelSettings]) -> list[ModelSettings]:
        names = [m.name for m in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"model name '{name}' appears more than once")
        return value

    def model(self, name: str) -> ModelSettings | None:
        return next((m for m in self.models if m.name == name), None)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def parse_config(doc: Any, source: str = "config") -> GatewayConfig:
    """Validate a parsed YAML document."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'models' list")
    try:
        return GatewayConfig.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a config file; every problem is a ConfigError naming the field."""
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
