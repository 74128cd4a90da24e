"""The gateway process with TLS, certificates made in the test (``openssl``): both ports over
TLS (plaintext refused), a replaced certificate served to new connections after the reload
interval while open ones keep answering, mutual TLS, and pods reached over TLS on either
backend."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.stack.procs import HOST, GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_http
from protos.tensors import to_numpy
from tests.fakes.certs import Issued, TestCa, client_context, install, write_file
from tests.integration.gateway.frontends.http_wire import post, read_response
from tests.integration.gateway.test_stalled_pod import (
    BACKENDS,
    BOUND_S,
    POD,
    grpc_infer,
    model,
    request,
    wait_for,
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def pod() -> AsyncIterator[PodProc]:
    proc = await asyncio.to_thread(start_pod, POD)
    yield proc
    await asyncio.to_thread(proc.stop)


def server_tls(files: Issued, **more: Any) -> dict[str, Any]:
    tls = {"cert_file": str(files.cert), "key_file": str(files.key), **more}
    return {"server": {"tls": tls}}


async def start(
    pods: list[PodProc], tls: ssl.SSLContext | None, extra: dict[str, Any], **kw: Any
) -> GatewayProc:
    return await asyncio.to_thread(start_gateway, [model(pods, **kw)], extra=extra, tls=tls)


async def https_infer(
    session: aiohttp.ClientSession, gw: GatewayProc, seed: int, tls: ssl.SSLContext
) -> None:
    """One REST inference over https, checked with ``tls``."""
    body, x = request(seed)
    payload, _ = v2_http.encode_request(body, False)
    url = f"https://{HOST}:{gw.http_port}/v2/models/sim/infer"
    async with session.post(url, data=payload, ssl=tls) as resp:
        assert resp.status == 200, await resp.text()
        out = v2_http.decode_response(await resp.read(), None)
    np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * x)


class KeptAlive:
    """One keep-alive https connection, spoken to request by request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, gw: GatewayProc, tls: ssl.SSLContext) -> KeptAlive:
        return cls(*await asyncio.open_connection(HOST, gw.http_port, ssl=tls))

    @property
    def shown(self) -> bytes:
        """The DER certificate this connection was shown at its handshake."""
        return bytes(self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True))

    async def infer(self, seed: int) -> None:
        body, x = request(seed)
        payload, _ = v2_http.encode_request(body, False)
        self.writer.write(post("/v2/models/sim/infer", payload))
        status, _, answer = await read_response(self.reader)
        assert status == 200, answer
        out = v2_http.decode_response(answer, None)
        np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * x)

    def close(self) -> None:
        self.writer.close()


def shown(port: int, ca: TestCa, alpn: str) -> bytes:
    """The DER certificate a new TLS connection to ``port`` (checked with ``ca``) is shown."""
    context = client_context(ca)
    context.set_alpn_protocols([alpn])
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def channel(gw: GatewayProc, ca: TestCa, own: Issued | None = None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert.read_bytes(),
        private_key=None if own is None else own.key.read_bytes(),
        certificate_chain=None if own is None else own.cert.read_bytes(),
    )
    return grpc.aio.secure_channel(gw.grpc_address, credentials)


async def test_both_ports_serve_tls_and_plaintext_is_refused(pod: PodProc, ca: TestCa) -> None:
    leaf = ca.issue("gateway-plain", serial=1)
    tls = client_context(ca)
    gw = await start([pod], tls, server_tls(leaf))
    try:
        async with aiohttp.ClientSession() as session:
            await https_infer(session, gw, 1, tls)
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"{gw.http_url}/v2/health/live")  # plain http to TLS
        async with channel(gw, ca) as secure:
            await grpc_infer(pb_grpc.GRPCInferenceServiceStub(secure), 2)
        async with grpc.aio.insecure_channel(gw.grpc_address) as insecure:
            with pytest.raises(grpc.aio.AioRpcError):
                await grpc_infer(pb_grpc.GRPCInferenceServiceStub(insecure), 3)
    finally:
        await asyncio.to_thread(gw.stop)


async def test_a_replaced_certificate_reaches_new_connections_and_open_ones_keep_answering(
    pod: PodProc, ca: TestCa, tmp_path: Path
) -> None:
    first, second = ca.issue("gateway-1", serial=101), ca.issue("gateway-2", serial=102)
    files = Issued(tmp_path / "tls.crt", tmp_path / "tls.key")
    install(files, first)
    tls = client_context(ca)
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        gw = await asyncio.to_thread(
            start_gateway,
            [model([pod])],
            extra=server_tls(files, reload_interval_s=0.2),
            tls=tls,
            stdout=out,
        )
    try:
        kept = await KeptAlive.open(gw, tls)
        async with channel(gw, ca) as old:
            old_stub = pb_grpc.GRPCInferenceServiceStub(old)
            await kept.infer(1)
            assert kept.shown == first.der
            await grpc_infer(old_stub, 2)
            install(files, second)
            await wait_for(lambda: shown(gw.http_port, ca, "http/1.1") == second.der, "HTTP")
            await wait_for(lambda: shown(gw.grpc_port, ca, "h2") == second.der, "gRPC")
            # the open connections, on the certificate they were shown, still answer
            await kept.infer(3)
            assert kept.shown == first.der
            await grpc_infer(old_stub, 4)
            async with aiohttp.ClientSession() as session:
                await https_infer(session, gw, 5, tls)
            async with channel(gw, ca) as new:
                await grpc_infer(pb_grpc.GRPCInferenceServiceStub(new), 6)
            # a key that is not the certificate's is refused, and the pair in force kept
            write_file(files.key, first.key.read_bytes())
            await wait_for(lambda: b"reload rejected" in log.read_bytes(), "the refusal")
            assert shown(gw.http_port, ca, "http/1.1") == second.der
            assert shown(gw.grpc_port, ca, "h2") == second.der
            await kept.infer(7)
        kept.close()
    finally:
        await asyncio.to_thread(gw.stop)


async def test_with_a_client_ca_only_clients_with_its_certificates_are_served(
    pod: PodProc, ca: TestCa
) -> None:
    leaf, own = ca.issue("gateway-mtls", serial=201), ca.issue("client", serial=202)
    anonymous, known = client_context(ca), client_context(ca, own)
    gw = await start([pod], known, server_tls(leaf, client_ca_file=str(ca.cert)))
    try:
        async with aiohttp.ClientSession() as session:
            await https_infer(session, gw, 1, known)
            with pytest.raises(aiohttp.ClientError):
                await https_infer(session, gw, 2, anonymous)
        async with channel(gw, ca, own) as secure:
            await grpc_infer(pb_grpc.GRPCInferenceServiceStub(secure), 3)
        async with channel(gw, ca) as without:
            with pytest.raises(grpc.aio.AioRpcError):
                await grpc_infer(pb_grpc.GRPCInferenceServiceStub(without), 4)
    finally:
        await asyncio.to_thread(gw.stop)


@BACKENDS
async def test_pods_are_reached_over_tls_with_backend_tls(backend: str, ca: TestCa) -> None:
    leaf = ca.issue(f"pod-{backend}", serial=300 + len(backend))
    tls = client_context(ca)
    args = [*POD, "--tls-cert", str(leaf.cert), "--tls-key", str(leaf.key)]
    pod = await asyncio.to_thread(start_pod, args, tls=tls)
    try:
        gw = await start([pod], None, {}, backend=backend, backend_tls={"ca_file": str(ca.cert)})
        try:
            async with grpc.aio.insecure_channel(gw.grpc_address) as plain:
                stub = pb_grpc.GRPCInferenceServiceStub(plain)
                await asyncio.wait_for(
                    asyncio.gather(*(grpc_infer(stub, i) for i in range(4))), BOUND_S
                )
        finally:
            await asyncio.to_thread(gw.stop)
    finally:
        await asyncio.to_thread(pod.stop)
