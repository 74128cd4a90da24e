"""The tenant directory: who a caller is (by API key), what it may call, its quota and level.

Keys are known by their SHA-256 digests only; a presented key's digest is compared with every
known digest (``hmac.compare_digest``, no early exit), so the time taken does not depend on
which key, if any, it matches. The settings and keys in force are one immutable snapshot,
replaced whole by ``refresh`` and ``update``; the token buckets are guarded by a lock.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.errors import Code, InferError
from gateway.tenants.key_files import Stamp, read_key_file, stamp_of
from gateway.tenants.open_paths import OpenPaths
from gateway.tenants.quota import TokenBucket, default_burst
from gateway.tenants.settings import RESERVED_NAME, AuthSettings, TenantSettings, check_tenants

__all__ = ["ANONYMOUS", "Tenant", "TenantDirectory"]

ANONYMOUS = RESERVED_NAME  # callers without a key, when no anonymous_tenant is configured
_BEARER = re.compile(r"bearer +(\S+)", re.IGNORECASE)
_NO_KEY = "an API key is required: send Authorization: Bearer KEY"
_UNKNOWN_KEY = "unknown API key"
_RPC_SERVICE = "/inference.GRPCInferenceService/"
_RPC_TEMPLATES = {
    "ServerLive": "/v2/health/live",
    "ServerReady": "/v2/health/ready",
    "ServerMetadata": "/v2",
    "ModelMetadata": "/v2/models/{model}",
    "ModelReady": "/v2/models/{model}/ready",
    "ModelConfig": "/v2/models/{model}/config",
    "ModelStatistics": "/v2/models/{model}/stats",
    # The standard gRPC health service on the same port: a readiness probe.
    "/grpc.health.v1.Health/Check": "/v2/health/ready",
    "/grpc.health.v1.Health/Watch": "/v2/health/ready",
}


@dataclass(frozen=True)
class Tenant:
    """A caller as the gateway serves it; ``models`` None: every model; no rate: no quota."""

    name: str
    models: frozenset[str] | None = None
    weight: float = 1.0
    max_priority: int | None = None
    max_rows_per_s: float | None = None
    burst_rows: int | None = None

    @classmethod
    def from_settings(cls, settings: TenantSettings) -> Tenant:
        rate = settings.max_rows_per_s
        burst = settings.burst_rows
        if rate is not None and burst is None:
            burst = default_burst(rate)
        return cls(
            name=settings.name,
            models=None if "*" in settings.models else frozenset(settings.models),
            weight=settings.weight,
            max_priority=settings.max_priority,
            max_rows_per_s=rate,
            burst_rows=burst,
        )

    def quota(self) -> str:
        if self.max_rows_per_s is None:
            return "none"
        return f"{self.max_rows_per_s:g} rows/s (burst {self.burst_rows})"


_ANONYMOUS_TENANT = Tenant(ANONYMOUS)


@dataclass
class _KeyFile:
    """One tenant's ``api_keys_file`` as last read."""

    path: str
    digests: frozenset[str]
    stamp: Stamp | None
    failure: str | None = None  # the last failure reported, so it is reported once


@dataclass(frozen=True)
class _Snapshot:
    tenants: Mapping[str, Tenant]  # in config order
    inline: Mapping[str, frozenset[str]]  # tenant -> api_key_sha256
    entries: tuple[tuple[bytes, Tenant], ...]  # every known digest and its tenant
    keyless: Tenant | None  # who callers without a key are; None: refused
    open_paths: OpenPaths
    enabled: bool
    auth: AuthSettings


def _owners(
    inline: Mapping[str, frozenset[str]], files: Mapping[str, frozenset[str]]
) -> tuple[dict[str, str], dict[str, str]]:
    """Each digest's tenant, and each tenant that shares a digest with another (-> the other)."""
    owners: dict[str, str] = {}
    clashes: dict[str, str] = {}
    for source in (inline, files):
        for name, digests in source.items():
            for digest in digests:
                other = owners.setdefault(digest, name)
                if other != name:
                    clashes.setdefault(name, other)
                    clashes.setdefault(other, name)
    return owners, clashes


def _entries(
    tenants: Mapping[str, Tenant],
    inline: Mapping[str, frozenset[str]],
    files: Mapping[str, _KeyFile],
) -> tuple[tuple[bytes, Tenant], ...]:
    owners, _ = _owners(inline, {n: f.digests for n, f in files.items()})
    return tuple((bytes.fromhex(d), tenants[n]) for d, n in sorted(owners.items()))


class TenantDirectory:
    """Identifies callers by API key and applies their tenant's models, quota and priority.

    ``identify``, ``authorize``, ``admit_rows`` and the rest may be called from any thread;
    ``refresh`` and ``update`` from one task at a time (the reload loop).
    """

    def __init__(
        self,
        tenants: Sequence[TenantSettings],
        auth: AuthSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read every key file once; a file that cannot be used is a ValueError naming it."""
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._state, self._files, _ = self._build(tenants, auth, {})

    @property
    def enabled(self) -> bool:
        """False with no tenants and no key required: every caller is ``anonymous``."""
        return self._state.enabled

    def names(self) -> list[str]:
        """Every tenant name a request can be counted under (bounded metric labels)."""
        return [*self._state.tenants, ANONYMOUS]

    def identify(self, authorization: str | None) -> Tenant:
        """The tenant of an ``Authorization`` header (``Bearer KEY``) or None when there is
        none; InferError UNAUTHENTICATED for a missing (when required), malformed or unknown
        key. An empty header counts as none."""
        state = self._state
        if not state.enabled:
            return _ANONYMOUS_TENANT
        value = (authorization or "").strip()
        if not value:
            if state.keyless is None:
                raise InferError(Code.UNAUTHENTICATED, _NO_KEY)
            return state.keyless
        match = _BEARER.fullmatch(value)
        if match is None:
            raise InferError(Code.UNAUTHENTICATED, _UNKNOWN_KEY)
        try:
            digest = hashlib.sha256(match.group(1).encode()).digest()
        except UnicodeEncodeError:
            raise InferError(Code.UNAUTHENTICATED, _UNKNOWN_KEY) from None
        found: Tenant | None = None
        for known, tenant in state.entries:  # all of them: no early exit
            if hmac.compare_digest(known, digest):
                found = tenant
        if found is None:
            raise InferError(Code.UNAUTHENTICATED, _UNKNOWN_KEY)
        return found

    def authorize(self, tenant: Tenant, model: str) -> None:
        """InferError PERMISSION_DENIED unless the tenant may call the model (whether or not
        it is served, so a refusal does not tell which models exist)."""
        if tenant.models is not None and model not in tenant.models:
            raise InferError(
                Code.PERMISSION_DENIED,
                f"tenant '{tenant.name}' may not call model '{model}'",
                reason="forbidden",
            )

    def admit_rows(self, tenant: Tenant, rows: int) -> None:
        """Take ``rows`` from the tenant's quota, or InferError RESOURCE_EXHAUSTED with the
        seconds until they would pass (none for a request over the burst: it never passes)."""
        rate, burst = tenant.max_rows_per_s, tenant.burst_rows
        if rate is None or burst is None:
            return
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(tenant.name)
            if bucket is None:
                bucket = self._buckets[tenant.name] = TokenBucket(rate, burst, now)
            wait = bucket.take(rows, now)
        if wait <= 0:
            return
        quota = f"{bucket.rate:g} rows/s (burst {bucket.burst})"
        if math.isinf(wait):
            raise InferError(
                Code.RESOURCE_EXHAUSTED,
                f"tenant '{tenant.name}' may send at most {bucket.burst} rows at once (its "
                f"quota is {quota}); this request has {rows}",
                reason="quota",
            )
        raise InferError(
            Code.RESOURCE_EXHAUSTED,
            f"tenant '{tenant.name}' is over its quota of {quota}",
            retry_after_s=max(0.001, wait),
            reason="quota",
        )

    def priority(self, tenant: Tenant, asked: int) -> int:
        """The level to serve at: ``asked`` (0: the model's default, left alone) but never a
        higher priority (smaller level) than the tenant's ``max_priority``."""
        if asked < 1 or tenant.max_priority is None:
            return asked
        return max(asked, tenant.max_priority)

    def is_open(self, method: str, path: str) -> bool:
        """Whether a REST request (its raw, percent-encoded path) may go without a key."""
        return method.upper() in ("GET", "HEAD") and self._state.open_paths.matches(path)

    def is_open_rpc(self, rpc: str) -> bool:
        """Whether a gRPC call (``ServerLive`` or ``/inference.GRPCInferenceService/ServerLive``)
        may go without a key: when its REST route is open. Inference calls never are."""
        name = rpc.removeprefix(_RPC_SERVICE)
        template = _RPC_TEMPLATES.get(name)
        return template is not None and template in self._state.open_paths.listed

    def refresh(self) -> list[str]:
        """Re-read the key files that changed; one message per tenant whose keys changed or
        whose file cannot be used (its last keys are kept, and the file is tried again)."""
        read: dict[str, frozenset[str]] = {}
        stamps: dict[str, Stamp] = {}
        messages: list[str] = []
        for name, kf in self._files.items():
            if kf.failure is None and stamp_of(kf.path) == kf.stamp:
                continue
            try:
                read[name], stamps[name] = read_key_file(kf.path)
            except ValueError as exc:
                self._fail(name, kf, str(exc), messages)
        if not read:
            return messages
        state = self._state
        while True:  # a file whose new keys clash with another tenant's is not applied
            view = {n: read.get(n, f.digests) for n, f in self._files.items()}
            _, clashes = _owners(state.inline, view)
            clashing = [n for n in read if n in clashes]
            if not clashing:
                break
            for name in clashing:
                del read[name]
                problem = f"a key in {self._files[name].path} is also tenant '{clashes[name]}''s"
                self._fail(name, self._files[name], problem, messages)
        for name, digests in read.items():
            kf = self._files[name]
            if digests != kf.digests or kf.failure is not None:
                was = len(kf.digests)
                messages.append(f"tenant '{name}': {len(digests)} keys from {kf.path} (was {was})")
            kf.digests, kf.stamp, kf.failure = digests, stamps[name], None
        self._state = replace(state, entries=_entries(state.tenants, state.inline, self._files))
        return messages

    def update(self, tenants: Sequence[TenantSettings], auth: AuthSettings) -> list[str]:
        """Put new settings in force (a live reload), re-reading every key file; a ValueError
        leaves the old ones in force. Buckets of tenants whose quota is unchanged are kept."""
        old = self._state
        state, files, messages = self._build(tenants, auth, self._files)
        for name in old.tenants.keys() - state.tenants.keys():
            messages.append(f"tenant '{name}' removed")
        for name, tenant in state.tenants.items():
            before = old.tenants.get(name)
            if before is None:
                messages.append(f"tenant '{name}' added")
            else:
                messages.extend(_changes(before, tenant))
                had, has = _key_count(old, self._files, name), _key_count(state, files, name)
                if had != has:
                    messages.append(f"tenant '{name}': {has} keys (was {had})")
        for field in ("required", "open_paths", "anonymous_tenant"):
            was, now = getattr(old.auth, field), getattr(auth, field)
            if was != now:
                messages.append(f"auth.{field}: {was!r} -> {now!r}")
        with self._lock:
            for name in list(self._buckets):
                before, after = old.tenants.get(name), state.tenants.get(name)
                if after is None or before is None or _rate(before) != _rate(after):
                    del self._buckets[name]  # a new quota starts full
            self._state, self._files = state, files
        return messages

    def _fail(self, name: str, kf: _KeyFile, problem: str, messages: list[str]) -> None:
        """Report a key file that cannot be used (once per distinct problem); keys are kept."""
        if problem != kf.failure:
            messages.append(f"tenant '{name}': {problem}; keeping its {len(kf.digests)} keys")
        kf.failure = problem

    def _build(
        self,
        tenants: Sequence[TenantSettings],
        auth: AuthSettings,
        previous: Mapping[str, _KeyFile],
    ) -> tuple[_Snapshot, dict[str, _KeyFile], list[str]]:
        """The snapshot and key files for settings; a file that cannot be read keeps the keys
        it gave the same tenant before, else it is a ValueError (as are clashing keys)."""
        check_tenants(list(tenants), auth)
        messages: list[str] = []
        files: dict[str, _KeyFile] = {}
        for settings in tenants:
            path = settings.api_keys_file
            if path is None:
                continue
            try:
                digests, stamp = read_key_file(path)
                files[settings.name] = _KeyFile(path, digests, stamp)
            except ValueError as exc:
                before = previous.get(settings.name)
                if before is None or before.path != path:
                    raise ValueError(f"tenant '{settings.name}': {exc}") from None
                kf = _KeyFile(path, before.digests, before.stamp, before.failure)
                self._fail(settings.name, kf, str(exc), messages)
                files[settings.name] = kf
        inline = {t.name: frozenset(t.api_key_sha256) for t in tenants}
        _, clashes = _owners(inline, {n: f.digests for n, f in files.items()})
        if clashes:
            name, other = next(iter(clashes.items()))
            raise ValueError(f"tenants '{name}' and '{other}' share a key (see api_keys_file)")
        by_name = {t.name: Tenant.from_settings(t) for t in tenants}
        keyless: Tenant | None = None
        if not auth.required:
            keyless = by_name[auth.anonymous_tenant] if auth.anonymous_tenant else _ANONYMOUS_TENANT
        state = _Snapshot(
            tenants=by_name,
            inline=inline,
            entries=_entries(by_name, inline, files),
            keyless=keyless,
            open_paths=OpenPaths(auth.open_paths),
            enabled=bool(by_name) or auth.required,
            auth=auth,
        )
        return state, files, messages


def _key_count(state: _Snapshot, files: Mapping[str, _KeyFile], name: str) -> int:
    on_file = files[name].digests if name in files else frozenset()
    return len(state.inline.get(name, frozenset()) | on_file)


def _rate(tenant: Tenant) -> tuple[float | None, int | None]:
    return (tenant.max_rows_per_s, tenant.burst_rows)


def _changes(before: Tenant, after: Tenant) -> list[str]:
    """Messages for what changed in a tenant kept across a reload."""
    out = []
    if before.models != after.models:
        out.append(f"models {_models(before)} -> {_models(after)}")
    if before.weight != after.weight:
        out.append(f"weight {before.weight:g} -> {after.weight:g}")
    if before.max_priority != after.max_priority:
        out.append(f"max_priority {before.max_priority} -> {after.max_priority}")
    if _rate(before) != _rate(after):
        out.append(f"quota {before.quota()} -> {after.quota()}")
    return [f"tenant '{after.name}': {change}" for change in out]


def _models(tenant: Tenant) -> str:
    return "*" if tenant.models is None else ", ".join(sorted(tenant.models)) or "(none)"
