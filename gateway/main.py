"""The ``gateway`` command: load the config, serve HTTP, gRPC and metrics until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from typing import Any

import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.core import Gateway
from gateway.frontends.grpc_service import build_grpc_server
from gateway.frontends.http_server import start_http_server
from gateway.frontends.rest import build_router, on_error
from gateway.frontends.tls import ServerTls, check_files
from gateway.load_metrics import LoadCollector
from gateway.memory_budget import BudgetCollector
from gateway.metrics import GatewayMetrics
from gateway.reload import ConfigReloader
from gateway.reporter import (
    LoadReporter,
    advertised_address,
    gateway_peers,
    gateway_snapshots,
)
from gateway.status import GatewayStatus, add_status_routes
from gateway.tenants.directory import TenantDirectory
from protos.logs import add_arguments as add_log_arguments
from protos.logs import configure as configure_logs

__all__ = ["main", "serve"]

log = logging.getLogger("gateway")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    parser.add_argument("--config", required=True, help="YAML config file (see README)")
    parser.add_argument("--host", help="listen address (overrides server.host)")
    parser.add_argument("--http-port", type=int, help="overrides server.http_port (8000)")
    parser.add_argument("--grpc-port", type=int, help="overrides server.grpc_port (8001)")
    parser.add_argument("--metrics-port", type=int, help="overrides server.metrics_port (8002)")
    parser.add_argument(
        "--reload-interval-s",
        type=float,
        default=1.0,
        help="how often to check the config file for changes (0: never; SIGHUP still reloads)",
    )
    add_log_arguments(parser)  # --log-format text|json, --log-level
    return parser.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "host": args.host,
        "http_port": args.http_port,
        "grpc_port": args.grpc_port,
        "metrics_port": args.metrics_port,
    }
    return {k: v for k, v in flags.items() if v is not None}


def _with_flags(config: GatewayConfig, args: argparse.Namespace) -> GatewayConfig:
    update = _overrides(args)
    if not update:
        return config
    server = type(config.server).model_validate({**config.server.model_dump(), **update})
    return config.model_copy(update={"server": server})


def _metrics_app(metrics: GatewayMetrics) -> web.Application:
    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def _site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    sockets: Any = runner.addresses
    return runner, int(sockets[0][1])


async def serve(
    config: GatewayConfig, stop: asyncio.Event, reloader_args: dict[str, Any] | None = None
) -> None:
    """Serve until ``stop`` is set, then drain: not ready, finish calls, close.

    With ``reloader_args`` (path, overrides), the config file is watched and SIGHUP reloads it.
    """
    gateway = Gateway(config)
    await gateway.start()
    snapshots = gateway_snapshots(gateway)
    reporter = None
    if config.autoscaler is not None:
        reporter = LoadReporter(
            settings=config.autoscaler,
            snapshots=snapshots,
            on_peers=gateway_peers(gateway),
            peer_address=advertised_address(config, os.environ),
        )
        reporter.start()
    registry = gateway.metrics.registry
    registry.register(LoadCollector(snapshots, reporter))
    loop_of_tasks = asyncio.get_running_loop()  # counted at scrape time: a leak of tasks shows
    tasks = Gauge("gateway_event_loop_tasks", "Tasks alive on the event loop", registry=registry)
    tasks.set_function(lambda: len(asyncio.all_tasks(loop_of_tasks)))
    registry.register(BudgetCollector(gateway.budget))
    reloader = None
    if reloader_args is not None:
        reloader = ConfigReloader(gateway, **reloader_args)
        reloader.start()
        reloads: set[asyncio.Future[bool]] = set()

        def on_sighup() -> None:
            reload = asyncio.ensure_future(reloader.reload("SIGHUP"))
            reloads.add(reload)  # keep a reference until it is done
            reload.add_done_callback(reloads.discard)

        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
    host = config.server.host
    tls = ServerTls.of(config.server.tls)  # None: plaintext on both ports
    grpc_tls = None if tls is None else tls.grpc_credentials()
    grpc_server, grpc_port, checker = await build_grpc_server(
        gateway, f"{host}:{config.server.grpc_port}", grpc_tls
    )
    http, http_port = await start_http_server(
        build_router(gateway),
        on_error,
        host,
        config.server.http_port,
        config.server,
        gateway.budget,
        None if tls is None else tls.http_context,
    )
    if tls is not None:
        tls.start()  # the certificate files are watched
    metrics_app = _metrics_app(gateway.metrics)
    add_status_routes(metrics_app, GatewayStatus(gateway, reporter).read)  # the live page
    metrics, metrics_port = await _site(metrics_app, host, config.server.metrics_port)
    # Everything allocated so far lives as long as the process: keep it out of the collector's
    # generations, and collect less often (the hot path allocates many short-lived objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    log.info(
        "serving %s on %s: http %d, grpc %d, metrics %d",
        ", ".join(gateway.models),
        host,
        http_port,
        grpc_port,
        metrics_port,
    )
    try:
        await stop.wait()
    finally:
        # Readiness off at once; both front-ends stop accepting at once (gRPC sends GOAWAY) and
        # drain together, so every call in flight, and what it queued, is dispatched and
        # answered; only then do the schedulers stop.
        grace = config.server.drain_grace_s
        log.info("stopping: draining in-flight requests (up to %g s)", grace)
        gateway.ready = False
        await checker.enter_graceful_shutdown()
        drains: list[Awaitable[object]] = [grpc_server.stop(grace), http.stop(grace_s=grace)]
        if reloader is not None:
            drains.append(reloader.stop())
        if tls is not None:
            drains.append(tls.stop())
        await asyncio.gather(*drains)
        if reporter is not None:
            await reporter.stop()
        await metrics.cleanup()
        await gateway.stop()
        log.info("stopped")


async def _run(config: GatewayConfig, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reload_args = {
        "path": args.config,
        "overrides": _overrides(args),
        "interval_s": args.reload_interval_s,
    }
    await serve(config, stop, reload_args)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    configure_logs(args.log_format, args.log_level)
    try:
        config = _with_flags(load_config(args.config), args)
        TenantDirectory(config.tenants, config.auth)  # its key files can be read
        check_files(config)  # and the TLS files
    except (ConfigError, ValueError) as exc:
        print(f"gateway: invalid config: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvloop.run(_run(config, args))


if __name__ == "__main__":
    main()
