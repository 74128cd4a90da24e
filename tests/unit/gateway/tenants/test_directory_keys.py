"""API key files: read at start, re-read on change, the last good keys kept when unusable."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InferError
from gateway.tenants.directory import TenantDirectory
from gateway.tenants.settings import AuthSettings, TenantSettings
from tests.fakes.clock import Clock


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write(path: Path, *lines: str) -> None:
    """Replace the file whole, as a Secret volume or an atomic writer does (a new inode)."""
    staged = path.with_name(path.name + ".new")
    staged.write_text("".join(f"{line}\n" for line in lines))
    os.replace(staged, path)


def tenant(name: str, path: Path | None, *keys: str, **fields: Any) -> TenantSettings:
    return TenantSettings.model_validate(
        {
            "name": name,
            "api_key_sha256": [sha(k) for k in keys],
            "api_keys_file": None if path is None else str(path),
            **fields,
        }
    )


def directory(*tenants: TenantSettings) -> TenantDirectory:
    return TenantDirectory(list(tenants), AuthSettings(required=True), clock=Clock())


def who(d: TenantDirectory, key: str) -> str | None:
    try:
        return d.identify(f"Bearer {key}").name
    except InferError:
        return None


def test_keys_are_read_from_the_file_with_comments_and_blank_lines(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, "# team a", "", f"  {sha('k1')}  ", f"{sha('k2').upper()}  # rotated in March")
    d = directory(tenant("a", keys, "inline"))
    assert [who(d, k) for k in ("k1", "k2", "inline", "k3")] == ["a", "a", "a", None]


def test_a_missing_file_at_start_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(f"tenant 'a': cannot read {tmp_path}/nope")):
        directory(tenant("a", tmp_path / "nope"))


def test_a_bad_line_names_the_line_but_not_its_text(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"), "my-raw-secret")
    with pytest.raises(ValueError, match="line 2: not a SHA-256 hex digest") as caught:
        directory(tenant("a", keys))
    assert "my-raw-secret" not in str(caught.value)


def test_refresh_without_a_change_says_nothing(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    assert d.refresh() == []
    assert who(d, "k1") == "a"


def test_an_added_key_works_after_refresh(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    write(keys, sha("k1"), sha("k2"))
    assert who(d, "k2") is None
    assert d.refresh() == [f"tenant 'a': 2 keys from {keys} (was 1)"]
    assert who(d, "k2") == "a"


def test_a_removed_key_is_refused_at_once_after_refresh(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"), sha("k2"))
    d = directory(tenant("a", keys))
    write(keys, sha("k2"))
    assert d.refresh() == [f"tenant 'a': 1 keys from {keys} (was 2)"]
    assert who(d, "k1") is None
    assert who(d, "k2") == "a"


def test_a_rewrite_with_the_same_keys_says_nothing(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    write(keys, "# reordered", sha("k1"))
    assert d.refresh() == []


def test_a_file_that_disappears_keeps_the_last_keys_and_is_reported_once(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    keys.unlink()
    [message] = d.refresh()
    assert message.startswith(f"tenant 'a': cannot read {keys}")
    assert message.endswith("; keeping its 1 keys")
    assert d.refresh() == []
    assert who(d, "k1") == "a"
    write(keys, sha("k2"))
    assert d.refresh() == [f"tenant 'a': 1 keys from {keys} (was 1)"]
    assert (who(d, "k1"), who(d, "k2")) == (None, "a")


def test_a_file_with_a_bad_line_keeps_the_last_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    write(keys, sha("k2"), "oops")
    assert d.refresh() == [
        f"tenant 'a': {keys} line 2: not a SHA-256 hex digest (64 hex characters); "
        "keeping its 1 keys"
    ]
    assert (who(d, "k1"), who(d, "k2")) == ("a", None)


def test_a_key_of_another_tenant_is_not_taken_over(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys), tenant("b", None, "kb"))
    write(keys, sha("k1"), sha("kb"))
    assert d.refresh() == [f"tenant 'a': a key in {keys} is also tenant 'b''s; keeping its 1 keys"]
    assert (who(d, "k1"), who(d, "kb")) == ("a", "b")


def test_a_key_moved_between_two_files_in_one_refresh_moves(tmp_path: Path) -> None:
    keys_a, keys_b = tmp_path / "a", tmp_path / "b"
    write(keys_a, sha("k1"), sha("moving"))
    write(keys_b, sha("k2"))
    d = directory(tenant("a", keys_a), tenant("b", keys_b))
    write(keys_b, sha("k2"), sha("moving"))
    write(keys_a, sha("k1"))
    assert sorted(d.refresh()) == [
        f"tenant 'a': 1 keys from {keys_a} (was 2)",
        f"tenant 'b': 2 keys from {keys_b} (was 1)",
    ]
    assert who(d, "moving") == "b"


def test_a_key_shared_by_two_tenants_at_start_is_an_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("shared"))
    with pytest.raises(ValueError, match="share a key"):
        directory(tenant("a", keys), tenant("b", None, "shared"))


def test_update_keeps_the_last_keys_of_a_file_it_cannot_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    keys.unlink()
    failed, changed = d.update([tenant("a", keys, weight=2)], AuthSettings(required=True))
    assert failed.startswith(f"tenant 'a': cannot read {keys}")
    assert failed.endswith("keeping its 1 keys")
    assert changed == "tenant 'a': weight 1 -> 2"
    assert who(d, "k1") == "a"


def test_update_refuses_a_new_file_it_cannot_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    with pytest.raises(ValueError, match="cannot read"):
        d.update([tenant("a", tmp_path / "other")], AuthSettings(required=True))
    assert who(d, "k1") == "a"


def test_update_rereads_the_files_and_reports_the_key_count(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write(keys, sha("k1"))
    d = directory(tenant("a", keys))
    write(keys, sha("k1"), sha("k2"), sha("k3"))
    assert d.update([tenant("a", keys)], AuthSettings(required=True)) == [
        "tenant 'a': 3 keys (was 1)"
    ]
    assert who(d, "k3") == "a"
    assert d.refresh() == []
