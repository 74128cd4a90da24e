"""``simpod``: run the simulated pod's gRPC and HTTP servers on uvloop until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
import uvloop
from aiohttp import web

from loadtest.simpod.config import PodConfig, parse_args
from loadtest.simpod.core import capacity_rows_per_s
from loadtest.simpod.decoupled import decoupled_models
from loadtest.simpod.engine import Engine
from loadtest.simpod.grpc_server import build_grpc_server, set_health
from loadtest.simpod.http_server import build_app
from loadtest.simpod.models import build_models

__all__ = ["DRAIN_S", "main", "serve"]

DRAIN_S = 3.0  # how long SIGTERM waits for in-flight batches
log = logging.getLogger("simpod")


def build_engine(cfg: PodConfig) -> Engine:
    """The engine for ``cfg``."""
    return Engine(
        build_models(
            cfg.model_name, cfg.max_batch, cfg.identity_models, cfg.row_size, not cfg.no_signature
        )
        | decoupled_models(cfg.decoupled_models),
        devices=cfg.devices,
        fixed_ms=cfg.fixed_ms,
        per_row_ms=cfg.per_row_ms,
        faults=cfg.faults,
        seed=cfg.seed,
    )


def _tls(cfg: PodConfig) -> tuple[grpc.ServerCredentials | None, ssl.SSLContext | None]:
    """The gRPC credentials and HTTP context of ``--tls-cert``/``--tls-key``; None: none."""
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None, None
    pair = (Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return grpc.ssl_server_credentials([pair]), context


async def serve(cfg: PodConfig) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    loop = asyncio.get_running_loop()
    engine = build_engine(cfg)
    credentials, context = _tls(cfg)
    grpc_server, health = await build_grpc_server(
        engine, f"{cfg.host}:{cfg.grpc_port}", credentials
    )
    runner = web.AppRunner(
        build_app(engine), handler_cancellation=True, access_log=None, shutdown_timeout=0.5
    )
    await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.http_port, ssl_context=context).start()
    await grpc_server.start()
    await set_health(health, False)
    limit = capacity_rows_per_s(cfg.max_batch, cfg.fixed_ms, cfg.per_row_ms, cfg.devices)
    log.info(
        "simpod listening: gRPC %s:%d, HTTP %s:%d; models %s; F=%gms c=%gms D=%d B=%d "
        "(limit %.0f rows/s); ready in %gs",
        cfg.host,
        cfg.grpc_port,
        cfg.host,
        cfg.http_port,
        ",".join(engine.models),
        cfg.fixed_ms,
        cfg.per_row_ms,
        cfg.devices,
        cfg.max_batch,
        limit,
        cfg.startup_s,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def start_up() -> None:
        await asyncio.sleep(cfg.startup_s)
        engine.set_started()
        await set_health(health, True)
        log.info("simpod ready")

    starting = asyncio.create_task(start_up())
    await stop.wait()
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    log.info("simpod stopping: readiness off, draining in-flight batches")
    engine.begin_drain()
    await set_health(health, False)
    if not await engine.drained(DRAIN_S):
        log.warning("simpod: in-flight requests still running after %gs; stopping anyway", DRAIN_S)
    engine.abort_stalled()
    await asyncio.sleep(0.05)  # let the handlers answer them
    await grpc_server.stop(grace=0.5)
    await runner.cleanup()
    log.info("simpod stopped")


def main(argv: Sequence[str] | None = None) -> None:
    """The ``simpod`` console script."""
    cfg = parse_args(argv)
    logging.basicConfig(
        level=cfg.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    uvloop.run(serve(cfg))
    sys.exit(0)


if __name__ == "__main__":
    main()
