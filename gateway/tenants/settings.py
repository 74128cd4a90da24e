"""The config sections for tenants: ``tenants:`` (who may call, how much) and ``auth:``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_OPEN_PATHS",
    "RESERVED_NAME",
    "AuthSettings",
    "TenantSettings",
    "check_tenants",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
_PLACEHOLDERS = ("{model}", "{version}")
RESERVED_NAME = "anonymous"  # the tenant callers without a key are counted as
DEFAULT_OPEN_PATHS = [
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/v2/models/{model}",
    "/v2/models/{model}/ready",
    "/v2/models/{model}/config",
]


class TenantSettings(BaseModel):
    """One tenant: its API keys (as SHA-256 hex digests), the models it may call, its quota of
    rows per second, its weight in the queue's fair share and its priority ceiling."""

    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    api_key_sha256: list[str] = []  # lower-cased at load
    api_keys_file: Annotated[str, Field(min_length=1)] | None = None  # a digest a line, '#' notes
    models: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = ["*"]
    max_rows_per_s: Annotated[float, Field(gt=0)] | None = None  # None: no quota
    burst_rows: Annotated[int, Field(gt=0)] | None = None  # None: max(1, ceil(max_rows_per_s))
    weight: Annotated[float, Field(gt=0)] = 1.0
    # The highest priority (smallest level; Triton's 1 is highest) its requests may ask for;
    # a request asking for a higher one is served at this level.
    max_priority: Annotated[int, Field(ge=1)] | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == RESERVED_NAME:
            raise ValueError(f"'{RESERVED_NAME}' is reserved for callers without a key")
        return value

    @field_validator("api_key_sha256")
    @classmethod
    def _digests(cls, value: list[str]) -> list[str]:
        for i, digest in enumerate(value):
            if not _DIGEST.match(digest):  # never echoed: it may be a key pasted by mistake
                raise ValueError(f"item {i} is not a SHA-256 hex digest (64 hex characters)")
        return [d.lower() for d in value]

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> TenantSettings:
        if self.burst_rows is not None and self.max_rows_per_s is None:
            raise ValueError("burst_rows is given without max_rows_per_s")
        return self


def _check_template(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"open path '{path}' does not start with '/'")
    for segment in path.split("/")[1:]:
        if ("{" in segment or "}" in segment) and segment not in _PLACEHOLDERS:
            raise ValueError(
                f"open path '{path}': only whole segments {{model}} and {{version}} are "
                f"placeholders, not '{segment}'"
            )
    return path


class AuthSettings(BaseModel):
    """Whether a key is required, which paths go without one, and who keyless callers are."""

    model_config = _FROZEN

    required: bool = False
    # Route templates (``{model}``, ``{version}``: one path segment) that GET and HEAD may call
    # without a key; a listed ``/v2/models/{model}...`` path is open in its versioned form too.
    open_paths: list[str] = list(DEFAULT_OPEN_PATHS)
    anonymous_tenant: str | None = None  # the tenant keyless callers are served as

    @field_validator("open_paths")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        return [_check_template(p) for p in value]

    @model_validator(mode="after")
    def _anonymous_needs_optional(self) -> AuthSettings:
        if self.required and self.anonymous_tenant is not None:
            raise ValueError(
                "anonymous_tenant is given but required is true: keyless callers are refused"
            )
        return self


def check_tenants(tenants: list[TenantSettings], auth: AuthSettings) -> None:
    """The rules across tenants: unique names, a digest or key file in one tenant only, and an
    ``anonymous_tenant`` that is one of them; a ValueError names the first broken one."""
    names: set[str] = set()
    owners: dict[str, str] = {}  # digest -> tenant
    readers: dict[str, str] = {}  # api_keys_file -> tenant
    for tenant in tenants:
        if tenant.name in names:
            raise ValueError(f"tenant name '{tenant.name}' appears more than once")
        names.add(tenant.name)
        for i, digest in enumerate(tenant.api_key_sha256):
            other = owners.setdefault(digest, tenant.name)
            if other != tenant.name:
                raise ValueError(
                    f"tenant '{tenant.name}': api_key_sha256 item {i} is also a key of "
                    f"tenant '{other}'"
                )
        path = tenant.api_keys_file
        if path is not None and readers.setdefault(path, tenant.name) != tenant.name:
            raise ValueError(f"tenants '{readers[path]}' and '{tenant.name}' both read {path}")
    if auth.anonymous_tenant is not None and auth.anonymous_tenant not in names:
        raise ValueError(f"auth.anonymous_tenant '{auth.anonymous_tenant}' is not a tenant")
