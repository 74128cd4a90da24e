"""TLS settings: plaintext unless configured; ``server.tls`` for both ports, ``backend_tls``
per model; each error names the field. The files are checked at start (``check_files``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, GatewayConfig, parse_config
from gateway.frontends.tls import check_files
from gateway.tls_files import TlsFileError
from tests.fakes.certs import TestCa


def config(server: dict[str, Any] | None = None, **model: Any) -> GatewayConfig:
    return parse_config({"server": server or {}, "models": [{"name": "m", **model}]})


def test_without_tls_settings_everything_is_plaintext() -> None:
    parsed = config()
    assert parsed.server.tls is None
    assert parsed.models[0].backend_tls is None


def test_server_tls_takes_a_pair_and_defaults_the_rest() -> None:
    tls = config({"tls": {"cert_file": "c.pem", "key_file": "k.pem"}}).server.tls
    assert tls is not None
    assert (tls.cert_file, tls.key_file) == ("c.pem", "k.pem")
    assert (tls.client_ca_file, tls.reload_interval_s) == (None, 5.0)


def test_backend_tls_takes_a_ca_and_optionally_a_pair_and_a_name() -> None:
    both = {"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem", "server_name": "p"}
    tls = config(backend_tls=both).models[0].backend_tls
    assert tls is not None and tls.server_name == "p" and tls.cert_file == "c.pem"
    only_ca = config(backend_tls={"ca_file": "ca.pem"}).models[0].backend_tls
    assert only_ca is not None and only_ca.cert_file is None and only_ca.server_name is None


@pytest.mark.parametrize(
    ("server", "model", "message"),
    [
        ({"tls": {"cert_file": "c.pem"}}, {}, "server.tls.key_file: Field required"),
        ({"tls": {"cert_file": "", "key_file": "k"}}, {}, "server.tls.cert_file"),
        (
            {"tls": {"cert_file": "c", "key_file": "k", "reload_interval_s": 0}},
            {},
            "server.tls.reload_interval_s",
        ),
        ({"tls": {"cert_file": "c", "key_file": "k", "ca": "x"}}, {}, "server.tls.ca: Extra"),
        ({}, {"backend_tls": {"cert_file": "c"}}, "models.0.backend_tls.ca_file"),
        ({}, {"backend_tls": {"ca_file": "a", "cert_file": "c"}}, "both cert_file and key_file"),
        ({}, {"backend_tls": {"ca_file": "a", "key_file": "k"}}, "both cert_file and key_file"),
    ],
)
def test_bad_tls_settings_are_named(
    server: dict[str, Any], model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        config(server, **model)


def test_at_start_the_files_are_read_and_the_first_unusable_one_named(tmp_path: Path) -> None:
    ca = TestCa(tmp_path)
    leaf = ca.issue("gw", serial=1)
    good = {"cert_file": str(leaf.cert), "key_file": str(leaf.key)}
    check_files(config({"tls": good}, backend_tls={"ca_file": str(ca.cert), **good}))
    with pytest.raises(TlsFileError, match=r"key_file .*missing\.key: cannot read"):
        check_files(config({"tls": {**good, "key_file": str(tmp_path / "missing.key")}}))
    with pytest.raises(TlsFileError, match="not a certificate and its key"):
        check_files(config({"tls": {**good, "key_file": str(ca.cert)}}))
    with pytest.raises(TlsFileError, match="no certificate in it"):
        check_files(config(backend_tls={"ca_file": str(leaf.key)}))
