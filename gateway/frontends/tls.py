"""TLS on the gateway's HTTP and gRPC ports (``server.tls``): one certificate pair, watched
and reloaded, behind the HTTP port's SSL context and the gRPC port's credentials.

A reload drops no connection. The HTTP port keeps one ``ssl.SSLContext`` and loads the new
pair into it: OpenSSL copies a context's certificate into each connection at its handshake, so
new handshakes get the new pair and open connections keep theirs. gRPC asks for a new pair at
every handshake (the fetcher of its dynamic credentials), and is given one once after each
reload. A new pair that cannot be used (unreadable, not PEM, the key not the certificate's, an
encrypted key) is logged and the pair in force kept; it is read again when its files change
again. The client CA (mutual TLS) is read once, at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable

import grpc

from gateway.backends.pod_tls import read_pod_files
from gateway.config import GatewayConfig
from gateway.tls_files import KeyPair, TlsFileError, load_chain, read_pair, read_pem
from gateway.tls_settings import ServerTlsSettings

__all__ = ["CertificateWatcher", "ServerTls", "check_files", "server_context"]

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int] | None  # a file's mtime_ns, size and inode; None: missing
Fetcher = Callable[[], "grpc.ServerCertificateConfiguration | None"]


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class CertificateWatcher:
    """The key pair in force, read again when either file changes (its modification time,
    size or inode, looked at every ``interval_s``); each new pair goes to every listener, and
    is in force once they all took it (one that raises TlsFileError refuses it)."""

    def __init__(self, cert_file: str, key_file: str, interval_s: float) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval_s = interval_s
        self._stamps = (_stamp(cert_file), _stamp(key_file))
        self.pair = read_pair(cert_file, key_file)  # at start an unusable pair is fatal
        self.generation = 0  # pairs taken in since start
        self._listeners: list[Callable[[KeyPair], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_change(self, listener: Callable[[KeyPair], None]) -> None:
        self._listeners.append(listener)

    def check(self) -> bool:
        """Read the pair again if a file changed; True when a new pair is now in force."""
        stamps = (_stamp(self.cert_file), _stamp(self.key_file))
        if stamps == self._stamps:
            return False
        self._stamps = stamps
        try:
            pair = read_pair(self.cert_file, self.key_file)
            if pair == self.pair:
                return False
            for listener in self._listeners:
                listener(pair)
        except TlsFileError as exc:
            log.error("TLS certificate reload rejected, keeping the one in force: %s", exc)
            return False
        self.pair = pair
        self.generation += 1
        log.info("TLS certificate reloaded from %s", self.cert_file)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.check()
            except Exception:  # the watch goes on; the pair in force stays
                log.exception("TLS certificate reload failed")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def server_context(settings: ServerTlsSettings, pair: KeyPair) -> ssl.SSLContext:
    """The HTTP port's context: TLS 1.2 or later, ALPN http/1.1, ``pair``; with a client CA,
    a certificate it signed is required of every client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    if settings.client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cafile=settings.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsFileError(f"client_ca_file {settings.client_ca_file}: {exc}") from None
    load_chain(context, pair)
    return context


class ServerTls:
    """TLS on both ports from one watched pair: ``http_context`` for the REST server,
    ``grpc_credentials()`` for the gRPC one. ``start`` watches the files; ``stop`` ends it."""

    def __init__(self, settings: ServerTlsSettings) -> None:
        self.settings = settings
        self.watcher = CertificateWatcher(
            settings.cert_file, settings.key_file, settings.reload_interval_s
        )
        ca = settings.client_ca_file
        self._client_ca = None if ca is None else read_pem(ca, "client_ca_file")
        self.http_context = server_context(settings, self.watcher.pair)
        self.watcher.on_change(self._reload_http)

    @classmethod
    def of(cls, settings: ServerTlsSettings | None) -> ServerTls | None:
        return None if settings is None else cls(settings)

    def _reload_http(self, pair: KeyPair) -> None:
        """The new pair into the HTTP port's context; checked already, so only if OpenSSL
        changed its mind is the pair in force put back (and the new one refused)."""
        try:
            load_chain(self.http_context, pair)
        except TlsFileError as exc:
            load_chain(self.http_context, self.watcher.pair)
            raise TlsFileError(f"the HTTP port did not take the new pair: {exc}") from None

    def _grpc_config(self, pair: KeyPair) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(pair.key, pair.chain)], root_certificates=self._client_ca
        )

    def grpc_fetcher(self) -> Fetcher:
        """gRPC's certificate fetcher, called at every handshake: the pair once after each
        reload, else None (no change)."""
        given = self.watcher.generation

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            nonlocal given
            if given == self.watcher.generation:
                return None
            given = self.watcher.generation
            return self._grpc_config(self.watcher.pair)

        return fetch

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``add_secure_port`` that take each new pair at the next handshake."""
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(self.watcher.pair),
            self.grpc_fetcher(),
            require_client_authentication=self._client_ca is not None,
        )

    def start(self) -> None:
        self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()


def check_files(config: GatewayConfig) -> None:
    """Read every TLS file the config names (the ports', each model's to its pods): a
    TlsFileError names the first that cannot be used."""
    ServerTls.of(config.server.tls)
    for model in config.models:
        if model.backend_tls is not None:
            read_pod_files(model.backend_tls)
