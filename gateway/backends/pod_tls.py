"""TLS to a model's pods (``backend_tls``): the gRPC channel's credentials and the HTTP
connections' SSL context, from files read when a pod's client is made.

Each new pod's client reads the files again, so a CA or client certificate replaced on disk
reaches the pods found after it (a client made before keeps what it read). When they cannot
be read, the last good read of the same settings is used (logged); with none, TlsFileError.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

import grpc

from gateway.tls_files import (
    KeyPair,
    TlsFileError,
    load_chain,
    pem_certificates,
    read_pair,
    read_pem,
)
from gateway.tls_settings import BackendTlsSettings

__all__ = ["PodTlsFiles", "channel_credentials", "client_context", "read_pod_files"]

log = logging.getLogger(__name__)
_last_good: dict[BackendTlsSettings, PodTlsFiles] = {}


@dataclass(frozen=True, slots=True)
class PodTlsFiles:
    """What the files hold: the CA's certificates, and the gateway's own pair if it shows one."""

    ca: str
    pair: KeyPair | None


def _read(settings: BackendTlsSettings) -> PodTlsFiles:
    ca = pem_certificates(read_pem(settings.ca_file, "backend_tls.ca_file"), settings.ca_file)
    pair = None
    if settings.cert_file is not None and settings.key_file is not None:
        pair = read_pair(settings.cert_file, settings.key_file, "backend_tls.")
    files = PodTlsFiles(ca, pair)
    _context(settings, files)  # the CA loads
    return files


def read_pod_files(settings: BackendTlsSettings) -> PodTlsFiles:
    """The files ``settings`` names, read and checked now (else the last good read)."""
    try:
        files = _read(settings)
    except TlsFileError as exc:
        last = _last_good.get(settings)
        if last is None:
            raise
        log.warning("backend_tls: %s; using what was read from it before", exc)
        return last
    _last_good[settings] = files
    return files


def _context(settings: BackendTlsSettings, files: PodTlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # the pod's name and chain are checked
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_verify_locations(cadata=files.ca)
    except ssl.SSLError as exc:
        raise TlsFileError(f"backend_tls.ca_file {settings.ca_file}: {exc}") from None
    if files.pair is not None:
        load_chain(context, files.pair)
    return context


def client_context(settings: BackendTlsSettings) -> ssl.SSLContext:
    """The SSL context of a pod's HTTP connections (the name checked: ``server_name``, else
    the endpoint's host, which the caller passes as ``server_hostname``)."""
    return _context(settings, read_pod_files(settings))


def channel_credentials(
    settings: BackendTlsSettings,
) -> tuple[grpc.ChannelCredentials, list[tuple[str, str]]]:
    """A pod channel's credentials, and the options that name the pod (``server_name``)."""
    files = read_pod_files(settings)
    pair = files.pair
    credentials = grpc.ssl_channel_credentials(
        root_certificates=files.ca.encode("ascii"),
        private_key=None if pair is None else pair.key,
        certificate_chain=None if pair is None else pair.chain,
    )
    name = settings.server_name
    return credentials, [] if name is None else [("grpc.ssl_target_name_override", name)]
