"""The REST server over TLS, on asyncio's and on uvloop's SSL transports: flow control both
ways as in plaintext, failed handshakes holding no connection, and a reloaded key pair served
to new connections while open ones keep theirs and go on answering."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvloop

from gateway.frontends.http_server import HttpLimits, HttpServer, Router
from gateway.frontends.tls import ServerTls
from gateway.tls_settings import ServerTlsSettings
from tests.fakes.certs import Issued, TestCa, client_context, install
from tests.integration.gateway.frontends.http_wire import (
    Handlers,
    closed,
    get,
    on_error,
    post,
    read_response,
    until,
)

Scenario = Callable[[], Coroutine[Any, Any, None]]
LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
ANSWER = 60_000  # bytes of each answer of /big


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def leaf(ca: TestCa) -> Issued:
    return ca.issue("server-1", serial=1)


class TlsServed:
    """A TLS server with the test routes, and the client side's context."""

    def __init__(self, server: HttpServer, tls: ServerTls, port: int, client: ssl.SSLContext):
        self.server, self.tls, self.port, self.client = server, tls, port, client
        self.handlers = Handlers()
        self.writers: list[asyncio.StreamWriter] = []

    async def connect(self, raw: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.client)
        self.writers.append(writer)
        writer.write(raw)
        return reader, writer


@contextlib.asynccontextmanager
async def tls_serving(ca: TestCa, files: Issued, **limits: Any) -> AsyncIterator[TlsServed]:
    handlers = Handlers()
    router = Router()
    router.add("POST", "/v2/models/{model}/infer", handlers.echo)
    router.add("GET", "/hang", handlers.hang)
    router.add("GET", "/big/{n}", handlers.big)
    router.add("GET", "/v2/health/live", handlers.health)
    tls = ServerTls(ServerTlsSettings(cert_file=str(files.cert), key_file=str(files.key)))
    server = HttpServer(router, on_error, replace(HttpLimits(max_body=200_000), **limits))
    port = await server.start("127.0.0.1", 0, tls.http_context)
    served = TlsServed(server, tls, port, client_context(ca))
    served.handlers = handlers
    try:
        yield served
    finally:
        for writer in served.writers:
            writer.transport.abort()
        handlers.release.set()
        await server.stop(grace_s=1.0)


def peer_der(writer: asyncio.StreamWriter) -> bytes:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert der is not None
    return bytes(der)


@LOOPS
def test_a_slow_reader_over_tls_gets_every_answer(
    run: Callable[[Coroutine[Any, Any, None]], None], ca: TestCa, leaf: Issued
) -> None:
    async def scenario() -> None:
        async with tls_serving(ca, leaf, write_buffer=16 * 1024, write_stall_s=2.0) as served:
            reader, _ = await served.connect(get(f"/big/{ANSWER}") * 40)
            for _ in range(40):
                status, _, body = await read_response(reader)
                assert (status, len(body)) == (200, ANSWER)
                await asyncio.sleep(0.001)
            assert len(served.server.connections) == 1

    run(scenario())


@LOOPS
def test_reading_ahead_over_tls_pauses_at_the_byte_budget_then_resumes(
    run: Callable[[Coroutine[Any, Any, None]], None], ca: TestCa, leaf: Issued
) -> None:
    body = b"b" * 100_000

    async def scenario() -> None:
        async with tls_serving(ca, leaf, read_ahead_bytes=64 * 1024) as served:
            posts = b"".join(post(f"/v2/models/m{i}/infer", body) for i in range(16))
            reader, _ = await served.connect(get("/hang") + posts)
            await asyncio.wait_for(served.handlers.started.wait(), 5)
            [conn] = served.server.connections
            await until(lambda: not conn.reading)
            assert conn.held_bytes <= 64 * 1024 + len(body) + 256 * 1024
            served.handlers.release.set()
            assert (await read_response(reader))[2] == b"released"
            for i in range(16):
                status, headers, echoed = await read_response(reader)
                assert (status, headers["x-model"], echoed) == (200, f"m{i}", body)

    run(scenario())


@LOOPS
def test_a_client_that_reads_nothing_over_tls_is_dropped(
    run: Callable[[Coroutine[Any, Any, None]], None], ca: TestCa, leaf: Issued
) -> None:
    async def scenario() -> None:
        async with tls_serving(ca, leaf, write_buffer=64 * 1024, write_stall_s=0.3) as served:
            _, writer = await served.connect(get(f"/big/{ANSWER}") * 300)
            await until(lambda: len(served.server.connections) == 1)
            await until(lambda: not served.server.connections)
            writer.transport.abort()

    run(scenario())


@LOOPS
def test_failed_handshakes_hold_no_connection(
    run: Callable[[Coroutine[Any, Any, None]], None], ca: TestCa, leaf: Issued
) -> None:
    async def scenario() -> None:
        async with tls_serving(ca, leaf, max_connections=1) as served:
            for _ in range(3):  # plain HTTP to the TLS port: the handshake fails
                reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
                writer.write(get("/v2/health/live"))
                assert await closed(reader)
                writer.close()
            assert not served.server.connections
            reader, writer = await served.connect(get("/v2/health/live"))  # not over the cap
            assert (await read_response(reader))[0] == 200
            assert len(served.server.connections) == 1

    run(scenario())


@LOOPS
def test_a_reloaded_pair_reaches_new_connections_and_open_ones_keep_answering(
    run: Callable[[Coroutine[Any, Any, None]], None], ca: TestCa, tmp_path: Path
) -> None:
    first = ca.issue("reload-1", serial=11)
    files = Issued(tmp_path / "tls.crt", tmp_path / "tls.key")
    install(files, first)

    async def scenario() -> None:
        async with tls_serving(ca, files) as served:
            old_reader, old_writer = await served.connect(get("/v2/health/live"))
            assert (await read_response(old_reader))[0] == 200
            assert peer_der(old_writer) == first.der
            second = ca.issue("reload-2", serial=12)
            install(files, second)
            assert served.tls.watcher.check()
            reader, writer = await served.connect(get("/v2/health/live"))
            assert (await read_response(reader))[0] == 200
            assert peer_der(writer) == second.der
            old_writer.write(get("/v2/health/live"))  # the open connection, on its old pair
            assert (await read_response(old_reader))[0] == 200
            assert peer_der(old_writer) == first.der

    run(scenario())
