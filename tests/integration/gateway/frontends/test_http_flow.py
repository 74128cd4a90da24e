"""Flow control of the REST server both ways: a client that never reads its answers is held to
a bounded buffer and then dropped; requests read ahead of the one being answered are held to a
byte budget, not a count."""

from __future__ import annotations

import asyncio

from tests.integration.gateway.frontends.http_wire import (
    closed,
    get,
    post,
    read_response,
    serving,
    until,
)

ANSWER = 60_000  # bytes of each answer of /big


async def test_a_client_that_reads_nothing_is_held_to_a_buffer_then_dropped() -> None:
    path = "/" + "p" * 60_000  # each answer, a 404, names it: 60 KB
    async with serving(write_buffer=64 * 1024, write_stall_s=0.3) as served:
        reader, writer = await served.connect()
        writer.write(get(path) * 300)  # 18 MB sent, 18 MB of answers owed; none read
        most_unsent = most_held = 0

        def dropped() -> bool:
            nonlocal most_unsent, most_held
            for conn in served.server.connections:
                most_unsent = max(most_unsent, conn.unsent_bytes)
                most_held = max(most_held, conn.held_bytes)
            return not served.server.connections

        await until(dropped)
        assert most_unsent <= 64 * 1024 + 61_000  # the high-water mark and one answer
        assert most_held <= 17 * 62_000  # the requests read ahead: 16 and one being parsed
        answers = 0
        try:
            while True:
                status, _, _ = await read_response(reader)
                assert status == 404
                answers += 1
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        assert answers < 300  # the kernel's buffers held some; the rest was never made


async def test_a_client_that_reads_slowly_gets_every_answer() -> None:
    async with serving(write_buffer=16 * 1024, write_stall_s=2.0) as served:
        reader, _ = await served.connect(get(f"/big/{ANSWER}") * 40)
        for _ in range(40):
            status, _, body = await read_response(reader)
            assert (status, len(body)) == (200, ANSWER)
            await asyncio.sleep(0.001)
        assert len(served.server.connections) == 1


async def test_bodies_read_ahead_are_held_to_a_byte_budget() -> None:
    body = b"b" * 100_000
    async with serving(max_body=200_000, read_ahead_bytes=64 * 1024) as served:
        reader, _ = await served.connect(
            get("/hang") + b"".join(post(f"/v2/models/m{i}/infer", body) for i in range(16))
        )
        await asyncio.wait_for(served.handlers.started.wait(), 5)
        [conn] = served.server.connections
        await until(lambda: not conn.reading)
        # the budget, one request over it and one socket read in flight; 16 whole bodies before
        assert conn.held_bytes <= 64 * 1024 + len(body) + 256 * 1024
        served.handlers.release.set()
        status, _, first = await read_response(reader)
        assert (status, first) == (200, b"released")
        for i in range(16):
            status, headers, echoed = await read_response(reader)
            assert (status, headers["x-model"], echoed) == (200, f"m{i}", body)


async def test_reading_resumes_when_the_answers_are_taken() -> None:
    async with serving(write_buffer=16 * 1024, write_stall_s=5.0) as served:
        reader, writer = await served.connect(get(f"/big/{ANSWER}") * 60)
        await asyncio.sleep(0.05)  # let the buffers fill while nothing is read
        for _ in range(60):
            assert (await read_response(reader))[0] == 200
        writer.write(get("/v2/health/live"))
        assert (await read_response(reader))[0] == 200
        writer.close()
        assert await closed(reader)
