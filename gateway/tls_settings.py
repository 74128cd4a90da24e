"""TLS settings: on the gateway's own ports (``server.tls``) and to a model's pods
(``backend_tls``). Files are named here and read when used (gateway.tls_files)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BackendTlsSettings", "ServerTlsSettings"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
PemFile = Annotated[str, Field(min_length=1)]


class ServerTlsSettings(BaseModel):
    """TLS on both the HTTP and the gRPC port: a PEM certificate chain and its key, read again
    every ``reload_interval_s`` when either file changed (new handshakes get the new pair, open
    connections keep theirs). With ``client_ca_file``, clients must show a certificate it
    signed (mutual TLS; read once, at start)."""

    model_config = _FROZEN

    cert_file: PemFile
    key_file: PemFile
    client_ca_file: PemFile | None = None
    reload_interval_s: Annotated[float, Field(gt=0)] = 5.0


class BackendTlsSettings(BaseModel):
    """TLS to a model's pods: their certificates must be signed by ``ca_file``; with
    ``cert_file`` and ``key_file`` the gateway shows its own; ``server_name`` is the name
    checked in the pod's certificate (and sent as SNI) instead of the endpoint's host. The
    files are read when a pod's client is made."""

    model_config = _FROZEN

    ca_file: PemFile
    cert_file: PemFile | None = None
    key_file: PemFile | None = None
    server_name: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _pair(self) -> BackendTlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file (a client certificate), or neither")
        return self
