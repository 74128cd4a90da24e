"""``backend_tls`` over both backends, against an in-process simulated pod that serves TLS and
requires a client certificate: the gateway's certificate and ``server_name`` get it through;
without either the pod cannot be reached."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web

from gateway.backends.backend import PodBackend, client_factory
from gateway.tls_settings import BackendTlsSettings
from loadtest.simpod.config import PodConfig
from loadtest.simpod.grpc_server import build_grpc_server
from loadtest.simpod.http_server import build_app
from loadtest.simpod.main import build_engine
from loadtest.stack.procs import free_port
from tests.fakes.certs import Issued, TestCa

BACKENDS = pytest.mark.parametrize("backend", ["grpc", "http"])
POD_NAME = "pod.test"  # the only name in the pod's certificate


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def own(ca: TestCa) -> Issued:
    """The gateway's client certificate."""
    return ca.issue("gateway", serial=2, hosts=("DNS:gateway",))


@contextlib.asynccontextmanager
async def tls_pod(ca: TestCa) -> AsyncIterator[dict[str, str]]:
    """A pod whose certificate names only ``POD_NAME`` and which wants one that ``ca`` signed
    of every client; its addresses by backend."""
    pair = ca.issue("pod", serial=1, hosts=(f"DNS:{POD_NAME}",))
    engine = build_engine(PodConfig())
    engine.set_started()
    credentials = grpc.ssl_server_credentials(
        [(pair.key.read_bytes(), pair.cert.read_bytes())],
        root_certificates=ca.cert.read_bytes(),
        require_client_auth=True,
    )
    grpc_address = f"127.0.0.1:{free_port()}"
    server, _ = await build_grpc_server(engine, grpc_address, credentials)
    await server.start()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(pair.cert), str(pair.key))
    runner = web.AppRunner(build_app(engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    addresses: Any = runner.addresses
    try:
        yield {"grpc": grpc_address, "http": f"127.0.0.1:{addresses[0][1]}"}
    finally:
        await server.stop(grace=None)
        await runner.cleanup()


def settings(ca: TestCa, own: Issued | None, name: str | None = POD_NAME) -> BackendTlsSettings:
    pair = {} if own is None else {"cert_file": str(own.cert), "key_file": str(own.key)}
    return BackendTlsSettings(ca_file=str(ca.cert), server_name=name, **pair)


async def ready(backend: str, address: str, tls: BackendTlsSettings) -> bool:
    client: PodBackend = client_factory(backend, tls)(address, "sim")
    try:
        return await client.model_ready(timeout_s=3.0)
    finally:
        await client.close()


@BACKENDS
async def test_the_pod_is_reached_with_the_ca_the_name_and_a_client_certificate(
    backend: str, ca: TestCa, own: Issued
) -> None:
    async with tls_pod(ca) as addresses:
        client = client_factory(backend, settings(ca, own))(addresses[backend], "sim")
        try:
            assert await client.model_ready(timeout_s=3.0)
            assert (await client.model_metadata(timeout_s=3.0)).name == "sim"
        finally:
            await client.close()


@BACKENDS
async def test_without_a_client_certificate_the_pod_cannot_be_reached(
    backend: str, ca: TestCa
) -> None:
    async with tls_pod(ca) as addresses:
        assert not await ready(backend, addresses[backend], settings(ca, None))


@BACKENDS
async def test_without_server_name_the_pod_s_certificate_does_not_match_its_address(
    backend: str, ca: TestCa, own: Issued
) -> None:
    async with tls_pod(ca) as addresses:
        assert not await ready(backend, addresses[backend], settings(ca, own, name=None))


@BACKENDS
async def test_a_pod_signed_by_another_ca_is_not_trusted(
    backend: str, ca: TestCa, own: Issued, tmp_path: Path
) -> None:
    other = TestCa(tmp_path, "other-ca")
    async with tls_pod(ca) as addresses:
        tls = BackendTlsSettings(
            ca_file=str(other.cert),
            cert_file=str(own.cert),
            key_file=str(own.key),
            server_name=POD_NAME,
        )
        assert not await ready(backend, addresses[backend], tls)
