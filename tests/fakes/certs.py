"""Test certificates made with the ``openssl`` command: a CA, and leaf certificates it signs
(server and client use), each a PEM certificate file and an unencrypted P-256 key file."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Issued", "TestCa", "client_context", "der_of", "install", "write_file"]

_DAYS = "2"
_LOOPBACK = ("IP:127.0.0.1", "DNS:localhost")


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run([binary, *args], check=True, capture_output=True)


def _key_args(key: Path) -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key)]


@dataclass(frozen=True)
class Issued:
    """A leaf certificate and its key."""

    cert: Path
    key: Path

    @property
    def der(self) -> bytes:
        return der_of(self.cert)


class TestCa:
    """A CA in ``folder`` (``ca.pem``) that issues leaf certificates there."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path, name: str = "test-ca") -> None:
        self.folder = folder
        self.cert = folder / f"{name}.pem"
        self._key = folder / f"{name}.key"
        _openssl(
            "req",
            "-x509",
            *_key_args(self._key),
            "-out",
            str(self.cert),
            "-days",
            _DAYS,
            "-subj",
            f"/CN={name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )

    def issue(self, name: str, serial: int, hosts: tuple[str, ...] = _LOOPBACK) -> Issued:
        """A certificate for ``hosts`` (subjectAltName entries), serial ``serial``, CN ``name``,
        valid for server and client use; its files are ``name``.pem and ``name``.key."""
        cert, key = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        csr, ext = self.folder / f"{name}.csr", self.folder / f"{name}.ext"
        ext.write_text(
            f"subjectAltName={','.join(hosts)}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n"
        )
        _openssl("req", *_key_args(key), "-out", str(csr), "-subj", f"/CN={name}")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(self.cert),
            "-CAkey",
            str(self._key),
            "-set_serial",
            str(serial),
            "-days",
            _DAYS,
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        )
        return Issued(cert, key)


def der_of(cert: Path) -> bytes:
    """The DER bytes of the first certificate in a PEM file."""
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def client_context(ca: TestCa, own: Issued | None = None) -> ssl.SSLContext:
    """A client context that trusts ``ca`` (and shows ``own``)."""
    context = ssl.create_default_context(cafile=str(ca.cert))
    if own is not None:
        context.load_cert_chain(str(own.cert), str(own.key))
    return context


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` and move its mtime on a second: a rewrite of the same size within the
    file system's clock tick would look unchanged to a watcher."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(data)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def install(files: Issued, pair: Issued) -> None:
    """Put ``pair``'s certificate and key in ``files`` (as a rotation would)."""
    write_file(files.cert, pair.cert.read_bytes())
    write_file(files.key, pair.key.read_bytes())
