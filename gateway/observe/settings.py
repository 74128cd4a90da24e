"""The config sections for request observation: ``access_log:`` and ``tracing:``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AccessLogSettings", "TracingSettings"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Ratio = Annotated[float, Field(ge=0, le=1)]


class AccessLogSettings(BaseModel):
    """One JSON/text line per inference request on the ``gateway.access`` logger: a sampled
    share of the answered ones, and every failed or slow one (up to ``max_lines_per_s``)."""

    model_config = _FROZEN

    sample: Ratio = 0.01  # the share of answered, fast requests logged
    errors: bool = True  # every failed request is logged
    slow_ms: Annotated[float, Field(gt=0)] | None = 1000.0  # every request this slow is logged
    max_lines_per_s: Annotated[float, Field(gt=0)] = 200.0  # beyond it, lines are counted, not
    burst_lines: Annotated[int, Field(gt=0)] = 400  # written (a flood of 429s is one metric)


class TracingSettings(BaseModel):
    """OpenTelemetry traces over OTLP/gRPC; off by default (then no span is ever made)."""

    model_config = _FROZEN

    enabled: bool = False
    sample_ratio: Ratio = 0.01  # of requests that come without a sampled parent
    otlp_endpoint: Annotated[str, Field(min_length=1)] = "localhost:4317"
    insecure: bool = True  # plaintext gRPC to the collector (a sidecar or node agent)
    service_name: Annotated[str, Field(min_length=1)] = "inference-gateway"
    export_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    max_queue_size: Annotated[int, Field(gt=0)] = 8192  # spans held for export; then dropped
    export_delay_ms: Annotated[int, Field(gt=0)] = 5000  # spans leave in batches this often
