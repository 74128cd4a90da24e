"""PEM files for TLS: read, checked, and loaded into an ``ssl.SSLContext`` from memory.

What is checked is what is loaded: a key pair is read once into bytes, and both the check
(a scratch context) and the context in use load those bytes, never the files again, so a file
replaced in between cannot slip in unchecked.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KeyPair", "TlsFileError", "load_chain", "pem_certificates", "read_pair", "read_pem"]

_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TlsFileError(ValueError):
    """A TLS file that cannot be read or used; the message names it."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate chain and its private key."""

    chain: bytes
    key: bytes


def read_pem(path: str, what: str) -> bytes:
    """The PEM file at ``path`` (``what`` names it in errors)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(f"{what} {path}: cannot read: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise TlsFileError(f"{what} {path}: not a PEM file")
    return data


def pem_certificates(data: bytes, what: str = "CA file") -> str:
    """The certificates of a PEM bundle, without the text around them (``cadata`` is ASCII)."""
    blocks = _CERTIFICATE.findall(data)
    if not blocks:
        raise TlsFileError(f"{what}: no certificate in it")
    return b"\n".join(blocks).decode("ascii", "replace")


def read_pair(cert_file: str, key_file: str, what: str = "") -> KeyPair:
    """The certificate chain and key in these files, checked to belong together (an encrypted
    key is refused: nobody is there to type its password)."""
    pair = KeyPair(read_pem(cert_file, f"{what}cert_file"), read_pem(key_file, f"{what}key_file"))
    load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), pair, f"{cert_file} and {key_file}")
    return pair


def load_chain(context: ssl.SSLContext, pair: KeyPair, what: str = "the key pair") -> None:
    """``context.load_cert_chain`` of ``pair``'s bytes; TlsFileError when they do not load."""
    with _as_files(pair) as (chain, key):
        try:
            context.load_cert_chain(chain, key, password=b"")
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            raise TlsFileError(f"{what}: not a certificate and its key ({reason})") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _memory_files(count: int) -> list[int] | None:
    """``count`` anonymous memory files (Linux), reachable through /proc; else None."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    fds: list[int] = []
    try:
        for _ in range(count):
            fds.append(os.memfd_create("tls"))
    except OSError:
        for fd in fds:
            os.close(fd)
        return None
    return fds


@contextlib.contextmanager
def _as_files(pair: KeyPair) -> Iterator[tuple[str, str]]:
    """``pair`` as two paths OpenSSL can open: anonymous memory files on Linux (the key is
    not written to a disk), else files in a private temporary folder, removed after."""
    parts = (pair.chain, pair.key)
    fds = _memory_files(2)
    if fds is not None:
        try:
            for fd, data in zip(fds, parts, strict=True):
                _write_all(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="gateway-tls-") as folder:
        paths = (os.path.join(folder, "chain.pem"), os.path.join(folder, "key.pem"))
        for path, data in zip(paths, parts, strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        yield paths
