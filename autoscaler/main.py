"""The ``autoscaler`` command: receive load reports, decide, and scale Deployments until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio import config as kube_config
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from autoscaler.actuator import DeploymentScaler, ScaleActuator
from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.config import AutoscalerConfig, ConfigError, load_config
from autoscaler.controller import KEDA, Controller, Target
from autoscaler.explain import explain_main
from autoscaler.keda import ExternalScaler
from autoscaler.leader import LeaderElector
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.receiver import LoadReceiver, start_receiver
from autoscaler.status import AutoscalerStatus, add_status_routes
from protos.logs import add_arguments as add_log_arguments
from protos.logs import configure as configure_logs

__all__ = ["main", "serve"]

log = logging.getLogger("autoscaler")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autoscaler",
        description=__doc__,
        epilog="autoscaler explain MODEL [--url URL] [-n N]: a running autoscaler's last "
        "decisions for MODEL and their inputs (see autoscaler explain --help)",
    )
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--host", help="listen address (overrides server.host)")
    parser.add_argument("--grpc-port", type=int, help="overrides server.grpc_port (8090)")
    parser.add_argument("--metrics-port", type=int, help="overrides server.metrics_port (8091)")
    parser.add_argument(
        "--dry-run", action="store_true", help="log and export decisions; never patch"
    )
    parser.add_argument(
        "--actuation",
        choices=["patch", "keda"],
        help="overrides the top-level actuation (models that set their own keep it)",
    )
    add_log_arguments(parser)
    return parser.parse_args(argv)


def _with_flags(config: AutoscalerConfig, args: argparse.Namespace) -> AutoscalerConfig:
    flags = {"host": args.host, "grpc_port": args.grpc_port, "metrics_port": args.metrics_port}
    server = config.server.model_copy(update={k: v for k, v in flags.items() if v is not None})
    update: dict[str, Any] = {"server": server}
    if args.dry_run:
        update["dry_run"] = True
    if args.actuation:
        update["actuation"] = args.actuation
    return config.model_copy(update=update)


async def _api_client(config: AutoscalerConfig) -> client.ApiClient | None:
    """A client from the kubeconfig, else in-cluster; None in a dry run with neither."""
    configuration = client.Configuration()
    try:
        if config.kubernetes.kubeconfig:
            await kube_config.load_kube_config(
                config_file=config.kubernetes.kubeconfig, client_configuration=configuration
            )
        else:
            kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        if config.dry_run:
            log.info("dry run without a cluster: current counts are the last decisions")
            return None
        raise
    return client.ApiClient(configuration)


def _targets(config: AutoscalerConfig) -> list[Target]:
    """One per model; the models of one Deployment carry its combined spec."""
    shared = config.deployment_specs()
    return [
        Target(
            m.name,
            m.namespace or config.kubernetes.namespace,
            m.deployment_name,
            m.scaling,
            m.actuation_or(config.actuation),
            shared[config.deployment_of(m)],
        )
        for m in config.models
    ]


def _deployment_models(targets: list[Target], target: Target) -> list[str]:
    """The models served by ``target``'s Deployment (itself included)."""
    where = (target.namespace, target.deployment)
    return [t.model for t in targets if (t.namespace, t.deployment) == where]


async def _metrics_site(
    metrics: AutoscalerMetrics, status: AutoscalerStatus, host: str, port: int
) -> web.AppRunner:
    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        # Live and ready on every replica, leading or not: the gateways stream to each one
        # (a standby's aggregate is what makes a takeover immediate).
        return web.Response(text="ok")

    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    add_status_routes(app, status)  # the live page: / and /status
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


async def serve(config: AutoscalerConfig, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then release the Lease and close."""
    metrics = AutoscalerMetrics()
    store = ReportStore(ttl_s=config.report_ttl_ms / 1000, missing_hold_s=config.missing_hold_s)
    identity = config.leader_election.identity or f"{socket.gethostname()}-{os.getpid()}"
    elector: LeaderElector | None = None

    def leading() -> bool:  # what the receiver tells each gateway; never gates readiness
        return elector.is_leader if elector is not None else True

    targets = _targets(config)
    # Every replica answers KEDA from its own decisions (each decides on the whole load).
    keda = ExternalScaler(
        store,
        models=[t.model for t in targets],
        shared={t.model: _deployment_models(targets, t) for t in targets},
        decisions=lambda: controller.decisions(),
        clock=time.monotonic,
    )

    def count(report: GatewayReport, rpc: str) -> None:
        metrics.reports.labels(report.model).inc()
        metrics.gateway_reports.labels(report.replica_id, rpc).inc()
        keda.notify(report.model)

    receiver = LoadReceiver(
        store, clock=time.monotonic, on_report=count, identity=identity, is_leader=leading
    )
    host = config.server.host
    address = f"{host}:{config.server.grpc_port}"
    grpc_server, grpc_port = await start_receiver(receiver, address, keda=keda)
    api = await _api_client(config)
    tasks: list[asyncio.Task[None]] = []
    if api is not None and config.leader_election.enabled and not config.dry_run:
        le = config.leader_election
        elector = LeaderElector(
            api,
            namespace=config.kubernetes.namespace,
            name=le.lease_name,
            identity=identity,
            lease_duration_s=le.lease_duration_s,
            renew_deadline_s=le.renew_deadline_s,
            retry_period_s=le.retry_period_s,
            on_change=lambda leading: metrics.leader.set(1.0 if leading else 0.0),
        )
        tasks.append(asyncio.create_task(elector.run(stop)))
    else:
        metrics.leader.set(1.0)
    scaler = None
    if api is not None:
        actuator = ScaleActuator(
            api, instance=identity, request_timeout_s=config.kubernetes.request_timeout_s
        )
        scaler = DeploymentScaler(actuator, resync_s=config.kubernetes.scale_resync_s)
    controller = Controller(
        targets=targets,
        store=store,
        metrics=metrics,
        scaler=scaler,
        dry_run=config.dry_run,
        is_leader=(lambda: elector.is_leader) if elector is not None else (lambda: True),
    )
    status = AutoscalerStatus(
        controller=controller,
        store=store,
        identity=identity,
        is_leader=leading,
        dry_run=config.dry_run,
    )
    site = await _metrics_site(metrics, status, host, config.server.metrics_port)
    tasks.append(asyncio.create_task(controller.run(stop, config.tick_ms / 1000)))
    keda_models = [t.model for t in targets if t.actuation == KEDA]
    log.info(
        "autoscaler %s: reports and KEDA's external scaler on %s:%d, metrics on %d, models %s%s%s",
        identity,
        host,
        grpc_port,
        config.server.metrics_port,
        ", ".join(m.name for m in config.models),
        f" (scaled by KEDA: {', '.join(keda_models)})" if keda_models else "",
        " (dry run)" if config.dry_run else "",
    )
    try:
        await stop.wait()
    finally:
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
        await grpc_server.stop(grace=1.0)
        await site.cleanup()
        if api is not None:
            await api.close()


async def _run(config: AutoscalerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["explain"]:
        raise SystemExit(explain_main(argv[1:]))
    args = _parse(argv)
    configure_logs(args.log_format, args.log_level)
    try:
        config = _with_flags(load_config(args.config), args)
        config.deployment_specs()  # an --actuation override may set a Deployment's models apart
    except (ConfigError, ValueError) as exc:
        print(f"autoscaler: invalid config: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    asyncio.run(_run(config))


if __name__ == "__main__":
    main()
