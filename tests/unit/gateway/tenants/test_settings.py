"""The ``tenants:`` and ``auth:`` sections: each field's rule and the rules across tenants."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.tenants.settings import (
    DEFAULT_OPEN_PATHS,
    AuthSettings,
    TenantSettings,
    check_tenants,
)

DIGEST = "ab" * 32


def tenant(**fields: Any) -> TenantSettings:
    return TenantSettings.model_validate({"name": "a", **fields})


def test_defaults_allow_every_model_with_no_quota() -> None:
    t = tenant()
    assert t.models == ["*"]
    assert t.api_key_sha256 == [] and t.api_keys_file is None
    assert t.max_rows_per_s is None and t.burst_rows is None
    assert t.weight == 1.0 and t.max_priority is None


@pytest.mark.parametrize("name", ["a", "team-1", "Team_2.prod", "x" * 64])
def test_names_of_up_to_64_safe_characters_are_accepted(name: str) -> None:
    assert tenant(name=name).name == name


@pytest.mark.parametrize("name", ["", "x" * 65, "a b", "a/b", "é", "a:b"])
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        tenant(name=name)


def test_anonymous_is_reserved() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        tenant(name="anonymous")


def test_digests_are_normalised_to_lower_case() -> None:
    assert tenant(api_key_sha256=["AB" * 32]).api_key_sha256 == [DIGEST]


@pytest.mark.parametrize("bad", ["ab" * 31, "ab" * 33, "zz" * 32, "my-secret-key"])
def test_a_digest_that_is_not_64_hex_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        tenant(api_key_sha256=[DIGEST, bad])
    assert "item 1 is not a SHA-256 hex digest" in str(caught.value)
    assert all(bad not in e["msg"] for e in caught.value.errors())


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"models": []}, "models"),
        ({"models": [""]}, "models"),
        ({"max_rows_per_s": 0}, "max_rows_per_s"),
        ({"max_rows_per_s": 10, "burst_rows": 0}, "burst_rows"),
        ({"weight": 0}, "weight"),
        ({"max_priority": 0}, "max_priority"),
        ({"api_keys_file": ""}, "api_keys_file"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_out_of_range_fields_are_refused(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        tenant(**fields)


def test_burst_needs_a_rate() -> None:
    with pytest.raises(ValidationError, match="burst_rows is given without max_rows_per_s"):
        tenant(burst_rows=5)
    assert tenant(max_rows_per_s=2.5, burst_rows=5).burst_rows == 5


def test_settings_are_frozen() -> None:
    t = tenant()
    with pytest.raises(ValidationError):
        t.weight = 2.0  # type: ignore[misc]


def test_auth_defaults_to_optional_with_health_and_metadata_open() -> None:
    auth = AuthSettings()
    assert auth.required is False and auth.anonymous_tenant is None
    assert auth.open_paths == DEFAULT_OPEN_PATHS
    assert "/v2/models/{model}/config" in auth.open_paths


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("v2/health/live", "does not start with '/'"),
        ("/v2/models/{name}", "not '{name}'"),
        ("/v2/models/x{model}", "not 'x{model}'"),
    ],
)
def test_open_paths_must_be_route_templates(path: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuthSettings(open_paths=[path])


def test_anonymous_tenant_with_required_is_refused() -> None:
    with pytest.raises(ValidationError, match="anonymous_tenant is given but required is true"):
        AuthSettings(required=True, anonymous_tenant="a")


def test_check_tenants_accepts_distinct_tenants() -> None:
    tenants = [
        tenant(name="a", api_key_sha256=[DIGEST, DIGEST], api_keys_file="/keys/a"),
        tenant(name="b", api_key_sha256=["cd" * 32], api_keys_file="/keys/b"),
    ]
    check_tenants(tenants, AuthSettings(anonymous_tenant="b"))


def test_check_tenants_refuses_a_name_twice() -> None:
    with pytest.raises(ValueError, match="tenant name 'a' appears more than once"):
        check_tenants([tenant(name="a"), tenant(name="a")], AuthSettings())


def test_check_tenants_refuses_a_digest_of_two_tenants_in_any_case() -> None:
    tenants = [
        tenant(name="a", api_key_sha256=[DIGEST]),
        tenant(name="b", api_key_sha256=["AB" * 32]),
    ]
    with pytest.raises(
        ValueError, match="tenant 'b': api_key_sha256 item 0 is also a key of tenant 'a'"
    ):
        check_tenants(tenants, AuthSettings())


def test_check_tenants_refuses_one_key_file_for_two_tenants() -> None:
    tenants = [tenant(name="a", api_keys_file="/k"), tenant(name="b", api_keys_file="/k")]
    with pytest.raises(ValueError, match="tenants 'a' and 'b' both read /k"):
        check_tenants(tenants, AuthSettings())


def test_check_tenants_refuses_an_unknown_anonymous_tenant() -> None:
    with pytest.raises(ValueError, match=r"auth\.anonymous_tenant 'guest' is not a tenant"):
        check_tenants([tenant(name="a")], AuthSettings(anonymous_tenant="guest"))
