"""The tenant directory: identifying callers by key, their models, priority and reloads."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from typing import Any

import pytest

from gateway.errors import Code, InferError
from gateway.tenants.directory import ANONYMOUS, Tenant, TenantDirectory
from gateway.tenants.settings import AuthSettings, TenantSettings
from tests.fakes.clock import Clock


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant(name: str, *keys: str, **fields: Any) -> TenantSettings:
    return TenantSettings.model_validate(
        {"name": name, "api_key_sha256": [sha(k) for k in keys], **fields}
    )


def directory(*tenants: TenantSettings, **auth: Any) -> TenantDirectory:
    return TenantDirectory(list(tenants), AuthSettings.model_validate(auth), clock=Clock())


def refused(call: Any, *args: Any) -> InferError:
    with pytest.raises(InferError) as caught:
        call(*args)
    return caught.value


def test_without_tenants_every_caller_is_anonymous_whatever_it_sends() -> None:
    d = directory()
    assert not d.enabled
    for header in (None, "", "Bearer nonsense", "Basic abc"):
        assert d.identify(header).name == ANONYMOUS
    assert d.names() == [ANONYMOUS]


def test_anonymous_may_call_every_model_at_any_level_without_quota() -> None:
    anonymous = directory().identify(None)
    assert anonymous == Tenant(ANONYMOUS)
    assert anonymous.models is None and anonymous.weight == 1.0
    assert anonymous.max_rows_per_s is None and anonymous.max_priority is None


def test_a_required_key_makes_the_directory_enabled_even_without_tenants() -> None:
    d = directory(required=True)
    assert d.enabled
    assert refused(d.identify, None).code is Code.UNAUTHENTICATED
    assert refused(d.identify, "Bearer k").message == "unknown API key"


def test_the_right_key_identifies_its_tenant() -> None:
    d = directory(tenant("a", "key-a", "key-a2"), tenant("b", "key-b"))
    assert d.enabled
    assert d.identify("Bearer key-a").name == "a"
    assert d.identify("Bearer key-a2").name == "a"
    assert d.identify("Bearer key-b").name == "b"


@pytest.mark.parametrize("header", ["bearer key-a", "BEARER   key-a", "  Bearer key-a  "])
def test_the_scheme_is_case_insensitive_and_spaces_are_loose(header: str) -> None:
    assert directory(tenant("a", "key-a")).identify(header).name == "a"


def test_an_upper_case_digest_in_the_config_matches_its_key() -> None:
    settings = TenantSettings(name="a", api_key_sha256=[sha("key-a").upper()])
    assert directory(settings).identify("Bearer key-a").name == "a"


def test_no_key_when_required_is_refused_with_how_to_send_one() -> None:
    error = refused(directory(tenant("a", "key-a"), required=True).identify, None)
    assert error.code is Code.UNAUTHENTICATED
    assert error.message == "an API key is required: send Authorization: Bearer KEY"


def test_no_key_when_optional_is_anonymous() -> None:
    d = directory(tenant("a", "key-a"))
    assert d.identify(None).name == ANONYMOUS
    assert d.identify("  ").name == ANONYMOUS  # an empty header counts as none


def test_no_key_is_served_as_the_anonymous_tenant_when_one_is_named() -> None:
    d = directory(tenant("a", "key-a"), tenant("guest", models=["m"]), anonymous_tenant="guest")
    guest = d.identify(None)
    assert guest.name == "guest" and guest.models == frozenset({"m"})


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong",
        "Bearer",
        "Bearer ",
        "Basic a2V5LWE=",
        "key-a",
        "Bearer key-a extra",
        "Bearer\tkey-a",
    ],
)
@pytest.mark.parametrize("required", [True, False])
def test_a_malformed_header_or_unknown_key_is_refused_without_echoing_it(
    header: str, required: bool
) -> None:
    error = refused(directory(tenant("a", "key-a"), required=required).identify, header)
    assert error.code is Code.UNAUTHENTICATED
    assert error.message == "unknown API key"


def test_a_key_that_is_not_encodable_is_unknown() -> None:
    error = refused(directory(tenant("a", "key-a")).identify, "Bearer \udcff")
    assert error.message == "unknown API key"


@pytest.mark.parametrize("key", ["key-a", "key-c", "nobody"])
def test_every_known_digest_is_compared_whichever_key_is_sent(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = directory(tenant("a", "key-a", "key-b"), tenant("b", "key-c", "key-d"))
    compared: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    with contextlib.suppress(InferError):
        d.identify(f"Bearer {key}")
    assert sorted(compared) == sorted(
        bytes.fromhex(sha(k)) for k in ("key-a", "key-b", "key-c", "key-d")
    )


def test_a_star_tenant_may_call_any_model() -> None:
    d = directory(tenant("a", "k"))
    d.authorize(d.identify("Bearer k"), "anything")


def test_a_tenant_with_a_list_may_call_only_those_models() -> None:
    d = directory(tenant("a", "k", models=["m1", "m2"]))
    a = d.identify("Bearer k")
    d.authorize(a, "m1")
    d.authorize(a, "m2")
    error = refused(d.authorize, a, "secret-model")
    assert error.code is Code.PERMISSION_DENIED
    assert error.message == "tenant 'a' may not call model 'secret-model'"


def test_star_among_names_means_all_models() -> None:
    d = directory(tenant("a", "k", models=["m1", "*"]))
    assert d.identify("Bearer k").models is None


@pytest.mark.parametrize(
    ("ceiling", "asked", "served"),
    [(None, 1, 1), (None, 0, 0), (2, 1, 2), (2, 2, 2), (2, 3, 3), (2, 0, 0), (1, 1, 1)],
)
def test_priority_is_clamped_to_the_tenants_ceiling(
    ceiling: int | None, asked: int, served: int
) -> None:
    d = directory(tenant("a", "k", max_priority=ceiling))
    assert d.priority(d.identify("Bearer k"), asked) == served


def test_names_are_the_configured_tenants_then_anonymous() -> None:
    assert directory(tenant("b"), tenant("a")).names() == ["b", "a", ANONYMOUS]


def test_tenant_carries_its_settings_with_the_default_burst() -> None:
    d = directory(tenant("a", "k", models=["m"], weight=3, max_priority=2, max_rows_per_s=2.5))
    assert d.identify("Bearer k") == Tenant(
        name="a",
        models=frozenset({"m"}),
        weight=3.0,
        max_priority=2,
        max_rows_per_s=2.5,
        burst_rows=3,
    )
    assert Tenant.from_settings(tenant("b", max_rows_per_s=0.2)).burst_rows == 1


def test_construction_checks_the_rules_across_tenants() -> None:
    with pytest.raises(ValueError, match="appears more than once"):
        directory(tenant("a"), tenant("a"))


def test_update_puts_new_keys_models_and_auth_in_force() -> None:
    d = directory(tenant("a", "old", models=["m1"]), tenant("gone", "g"))
    messages = d.update(
        [tenant("a", "new", "new2", models=["m2"], weight=2), tenant("fresh", "f")],
        AuthSettings(required=True),
    )
    assert refused(d.identify, "Bearer old").code is Code.UNAUTHENTICATED
    assert refused(d.identify, "Bearer g").code is Code.UNAUTHENTICATED
    assert refused(d.identify, None).code is Code.UNAUTHENTICATED
    a = d.identify("Bearer new")
    d.authorize(a, "m2")
    assert refused(d.authorize, a, "m1").code is Code.PERMISSION_DENIED
    assert d.identify("Bearer f").name == "fresh"
    assert d.names() == ["a", "fresh", ANONYMOUS]
    assert sorted(messages) == sorted(
        [
            "tenant 'gone' removed",
            "tenant 'fresh' added",
            "tenant 'a': models m1 -> m2",
            "tenant 'a': weight 1 -> 2",
            "tenant 'a': 2 keys (was 1)",
            "auth.required: False -> True",
        ]
    )


def test_update_with_nothing_changed_says_nothing() -> None:
    settings = [tenant("a", "k", max_rows_per_s=5)]
    d = directory(*settings)
    assert d.update(settings, AuthSettings()) == []


def test_an_invalid_update_leaves_the_old_settings_in_force() -> None:
    d = directory(tenant("a", "k"))
    with pytest.raises(ValueError, match="not a tenant"):
        d.update([tenant("b", "k")], AuthSettings(anonymous_tenant="nobody"))
    assert d.identify("Bearer k").name == "a"
