"""Per-tenant quotas: a token bucket of rows on the injected clock, kept across reloads."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import Code, InferError
from gateway.tenants.directory import Tenant, TenantDirectory
from gateway.tenants.settings import AuthSettings, TenantSettings
from tests.fakes.clock import Clock


def settings(name: str = "a", **fields: Any) -> TenantSettings:
    return TenantSettings.model_validate({"name": name, **fields})


def setup(*tenants: TenantSettings) -> tuple[TenantDirectory, Clock, dict[str, Tenant]]:
    clock = Clock(100.0)
    d = TenantDirectory(list(tenants), AuthSettings(), clock=clock)
    return d, clock, {t.name: Tenant.from_settings(t) for t in tenants}


def over(d: TenantDirectory, tenant: Tenant, rows: int) -> InferError:
    with pytest.raises(InferError) as caught:
        d.admit_rows(tenant, rows)
    assert caught.value.code is Code.RESOURCE_EXHAUSTED
    return caught.value


def test_a_tenant_without_quota_is_never_refused() -> None:
    d, _, t = setup(settings())
    for _ in range(1000):
        d.admit_rows(t["a"], 1_000_000)


def test_the_burst_passes_at_once_then_the_next_row_is_refused() -> None:
    d, _, t = setup(settings(max_rows_per_s=10, burst_rows=20))
    d.admit_rows(t["a"], 15)
    d.admit_rows(t["a"], 5)
    error = over(d, t["a"], 1)
    assert error.message == "tenant 'a' is over its quota of 10 rows/s (burst 20)"
    assert error.retry_after_s == pytest.approx(0.1)


def test_the_default_burst_is_one_second_of_rows() -> None:
    d, _, t = setup(settings(max_rows_per_s=2.5))
    d.admit_rows(t["a"], 3)
    assert over(d, t["a"], 1).message == "tenant 'a' is over its quota of 2.5 rows/s (burst 3)"


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    d, clock, t = setup(settings(max_rows_per_s=10, burst_rows=20))
    d.admit_rows(t["a"], 20)
    clock.advance(0.5)
    d.admit_rows(t["a"], 5)
    over(d, t["a"], 1)
    clock.advance(3600)  # a long idle time refills to the burst, not beyond
    d.admit_rows(t["a"], 20)
    over(d, t["a"], 1)


def test_retry_after_is_the_time_until_enough_tokens() -> None:
    d, clock, t = setup(settings(max_rows_per_s=4, burst_rows=8))
    d.admit_rows(t["a"], 6)
    error = over(d, t["a"], 8)  # 2 left, 6 more at 4 rows/s
    assert error.retry_after_s == pytest.approx(1.5)
    clock.advance(1.5)
    d.admit_rows(t["a"], 8)


def test_retry_after_is_at_least_a_millisecond() -> None:
    d, clock, t = setup(settings(max_rows_per_s=1000, burst_rows=1))
    d.admit_rows(t["a"], 1)
    clock.advance(0.0009999)
    assert over(d, t["a"], 1).retry_after_s == 0.001


def test_a_refused_request_takes_no_tokens() -> None:
    d, _, t = setup(settings(max_rows_per_s=1, burst_rows=10))
    d.admit_rows(t["a"], 7)
    over(d, t["a"], 5)
    d.admit_rows(t["a"], 3)


def test_a_request_over_the_burst_can_never_pass() -> None:
    d, clock, t = setup(settings(max_rows_per_s=10, burst_rows=20))
    clock.advance(1000)
    error = over(d, t["a"], 21)
    assert error.message == (
        "tenant 'a' may send at most 20 rows at once (its quota is 10 rows/s (burst 20)); "
        "this request has 21"
    )
    assert error.retry_after_s is None
    d.admit_rows(t["a"], 20)  # and it took nothing


def test_one_tenant_over_quota_leaves_another_unaffected() -> None:
    d, _, t = setup(settings("a", max_rows_per_s=1), settings("b", max_rows_per_s=1))
    d.admit_rows(t["a"], 1)
    over(d, t["a"], 1)
    d.admit_rows(t["b"], 1)


def test_a_clock_stepping_back_refills_nothing() -> None:
    d, clock, t = setup(settings(max_rows_per_s=1, burst_rows=1))
    d.admit_rows(t["a"], 1)
    clock.advance(-10)
    over(d, t["a"], 1)


def test_an_update_keeps_the_bucket_of_an_unchanged_quota() -> None:
    d, _, t = setup(settings("a", max_rows_per_s=1, burst_rows=5), settings("b"))
    d.admit_rows(t["a"], 5)
    d.update([settings("a", max_rows_per_s=1, burst_rows=5, weight=2)], AuthSettings())
    over(d, t["a"], 1)  # still empty: not refilled by the reload


def test_an_update_keeps_a_full_bucket_full() -> None:
    d, _, t = setup(settings("a", max_rows_per_s=1, burst_rows=5))
    d.admit_rows(t["a"], 1)
    d.update([settings("a", max_rows_per_s=1, burst_rows=5)], AuthSettings())
    d.admit_rows(t["a"], 4)
    over(d, t["a"], 1)


def test_an_update_that_changes_the_quota_starts_a_full_bucket() -> None:
    d, _, t = setup(settings("a", max_rows_per_s=1, burst_rows=5))
    d.admit_rows(t["a"], 5)
    new = settings("a", max_rows_per_s=2, burst_rows=10)
    messages = d.update([new], AuthSettings())
    assert messages == ["tenant 'a': quota 1 rows/s (burst 5) -> 2 rows/s (burst 10)"]
    d.admit_rows(Tenant.from_settings(new), 10)


def test_an_update_that_removes_a_tenant_forgets_its_bucket() -> None:
    d, _, t = setup(settings("a", max_rows_per_s=1, burst_rows=5))
    d.admit_rows(t["a"], 5)
    d.update([], AuthSettings())
    d.update([settings("a", max_rows_per_s=1, burst_rows=5)], AuthSettings())
    d.admit_rows(t["a"], 5)
