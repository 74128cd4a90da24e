"""The certificate watcher and the ports' TLS pieces: a changed pair is taken, an unusable one
refused with the pair in force kept, gRPC's fetcher hands each new pair over once."""

from __future__ import annotations

import logging
import ssl
import subprocess
from pathlib import Path

import pytest

from gateway import tls_files
from gateway.frontends.tls import CertificateWatcher, ServerTls, server_context
from gateway.tls_files import KeyPair, TlsFileError, read_pair
from gateway.tls_settings import ServerTlsSettings
from tests.fakes.certs import Issued, TestCa, install, write_file


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def pairs(ca: TestCa) -> tuple[Issued, Issued]:
    return ca.issue("one", serial=1), ca.issue("two", serial=2)


@pytest.fixture
def files(tmp_path: Path, pairs: tuple[Issued, Issued]) -> Issued:
    """The files the server is configured with, holding pair one."""
    live = Issued(tmp_path / "tls.crt", tmp_path / "tls.key")
    install(live, pairs[0])
    return live


def watcher_of(files: Issued) -> CertificateWatcher:
    return CertificateWatcher(str(files.cert), str(files.key), interval_s=1.0)


def test_unchanged_files_are_not_read_again(files: Issued) -> None:
    watcher = watcher_of(files)
    assert not watcher.check()
    assert watcher.generation == 0


def test_a_changed_pair_is_taken_and_told_to_every_listener(
    files: Issued, pairs: tuple[Issued, Issued]
) -> None:
    watcher = watcher_of(files)
    told: list[KeyPair] = []
    watcher.on_change(told.append)
    install(files, pairs[1])
    assert watcher.check()
    assert watcher.pair.chain == pairs[1].cert.read_bytes()
    assert told == [watcher.pair] and watcher.generation == 1


def test_a_key_that_is_not_the_certificate_s_is_refused_and_the_pair_kept(
    files: Issued, pairs: tuple[Issued, Issued], caplog: pytest.LogCaptureFixture
) -> None:
    watcher = watcher_of(files)
    before = watcher.pair
    write_file(files.cert, pairs[1].cert.read_bytes())  # the key is still pair one's
    with caplog.at_level(logging.ERROR):
        assert not watcher.check()
    assert watcher.pair == before and watcher.generation == 0
    assert "reload rejected" in caplog.text
    write_file(files.key, pairs[1].key.read_bytes())  # the key follows: now it is taken
    assert watcher.check()
    assert watcher.pair.chain == pairs[1].cert.read_bytes()


def test_a_missing_or_garbled_file_is_refused(files: Issued) -> None:
    watcher = watcher_of(files)
    before = watcher.pair
    files.key.unlink()
    assert not watcher.check()
    write_file(files.key, b"not a key")
    assert not watcher.check()
    assert watcher.pair == before


def test_a_listener_that_refuses_keeps_the_pair_in_force(
    files: Issued, pairs: tuple[Issued, Issued]
) -> None:
    watcher = watcher_of(files)
    before = watcher.pair

    def refuse(_: KeyPair) -> None:
        raise TlsFileError("no")

    watcher.on_change(refuse)
    install(files, pairs[1])
    assert not watcher.check()
    assert watcher.pair == before


def test_an_encrypted_key_is_refused(tmp_path: Path, pairs: tuple[Issued, Issued]) -> None:
    locked = tmp_path / "locked.key"
    encrypt = ["openssl", "pkey", "-in", str(pairs[0].key), "-aes128", "-passout", "pass:x"]
    subprocess.run([*encrypt, "-out", str(locked)], check=True, capture_output=True)
    with pytest.raises(TlsFileError, match="not a certificate and its key"):
        read_pair(str(pairs[0].cert), str(locked))


def test_grpc_is_handed_each_new_pair_once(files: Issued, pairs: tuple[Issued, Issued]) -> None:
    tls = ServerTls(ServerTlsSettings(cert_file=str(files.cert), key_file=str(files.key)))
    fetch = tls.grpc_fetcher()
    assert fetch() is None
    install(files, pairs[1])
    assert tls.watcher.check()
    assert fetch() is not None
    assert fetch() is None


def test_the_http_context_is_tls12_or_later_with_alpn_and_optional_client_certificates(
    ca: TestCa, files: Issued
) -> None:
    plain = ServerTlsSettings(cert_file=str(files.cert), key_file=str(files.key))
    pair = read_pair(plain.cert_file, plain.key_file)
    context = server_context(plain, pair)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    mutual = plain.model_copy(update={"client_ca_file": str(ca.cert)})
    assert server_context(mutual, pair).verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(TlsFileError, match="client_ca_file"):
        server_context(plain.model_copy(update={"client_ca_file": str(files.key)}), pair)


def test_without_memory_files_a_pair_loads_through_a_private_folder(
    monkeypatch: pytest.MonkeyPatch, pairs: tuple[Issued, Issued]
) -> None:
    monkeypatch.setattr(tls_files, "_memory_files", lambda count: None)
    pair = read_pair(str(pairs[0].cert), str(pairs[0].key))
    assert pair.chain == pairs[0].cert.read_bytes()
    with pytest.raises(TlsFileError):
        read_pair(str(pairs[0].cert), str(pairs[1].key))
