"""``loadtest trace``: run a load trace against the stack and report it.

By default it starts its own stack the way ``make run`` does (simulated pods, then the gateway
serving ``sim`` from them with dynamic batching; or ``stack.gateways`` replicas of it, the load
spread evenly over them), on free loopback ports, so it knows every process id (for CPU) and
metrics URL; or it points at a running stack (``target``, ``metrics``,
``pids``). The load is the open-loop generator (``open_loop``) with the trace as its rate shape,
split over generator processes; latency counts from each request's scheduled send time. While
it runs, ``traces.monitor`` samples the stack each second and shows a live display; at the end it
prints the summary table and writes ``report.json`` and the PNG plots into the output folder.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtest.clients.base import ClientSpec
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.probes.metrics import fetch_metrics
from loadtest.results.open_loop_result import DEFAULT_LAG_LIMIT_US, OpenLoopResult
from loadtest.results.report import machine_note, write_json
from loadtest.stack.gateways import Gateways, start_gateways
from loadtest.stack.local import StackConfig
from loadtest.stack.procs import PodProc, start_pod
from loadtest.stack.simpod_args import QUIET
from loadtest.stack.spread import run_open_loop_spread, spread_processes, spread_specs
from loadtest.traces.monitor import LiveView, Monitor
from loadtest.traces.report import PhaseFigures, print_summary, series, summarize
from loadtest.traces.shapes import Trace

__all__ = ["TraceConfig", "TraceRun", "run_trace"]


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """A trace run. Without ``target`` it starts ``stack`` itself (its ports are ignored).

    With ``target`` (``http://host:port``, or ``host:port`` for gRPC), ``metrics`` lists the
    metrics URLs to scrape and ``pids`` the processes whose CPU to read, by name.
    """

    trace: Trace
    protocol: str = "http-binary"
    rows: int = 1  # per request
    processes: int = 1  # generator processes
    slo_ms: float = 50.0  # goodput counts answers within it
    warmup_s: float = 1.0
    timeout_s: float = 2.0  # per request
    seed: int = 1  # of the arrivals
    verify_every: int = 64  # one answer in N is checked
    lag_limit_us: int = DEFAULT_LAG_LIMIT_US
    out_dir: Path | None = None
    target: str | None = None
    metrics: tuple[str, ...] = ()
    pids: tuple[tuple[str, int], ...] = ()
    stack: StackConfig = field(default_factory=StackConfig)
    plots: bool = True

    @property
    def out(self) -> Path:
        return self.out_dir or Path("reports") / f"trace-{self.trace.name}"

    def load(self) -> OpenLoopConfig:
        return OpenLoopConfig(
            rate=self.trace.peak,
            duration_s=self.trace.duration_s,
            warmup_s=self.warmup_s,
            processes=self.processes,
            seed=self.seed,
            lag_limit_us=self.lag_limit_us,
            drain_s=self.timeout_s + 1.0,
            shape=self.trace.relative,
            per_second=True,
        )


@dataclass(slots=True)
class TraceRun:
    """What a run produced: the report document, the merged result, the summary, the files."""

    doc: dict[str, Any]
    result: OpenLoopResult
    phases: list[PhaseFigures]
    files: list[Path]


@dataclass(slots=True)
class _Stack:
    """Where the load goes and what to watch there."""

    target: str
    sources: dict[str, str]  # metrics URL by name
    kinds: dict[str, str]  # gateway / pod / other, by name
    pids: dict[str, int]
    gateways: Gateways | None = None
    spread: tuple[str, ...] = ()  # several targets (gateway replicas): the load goes to each


def _own_stack(config: TraceConfig, stop: contextlib.ExitStack) -> _Stack:
    """Start pods and the gateway like ``make run`` (on free ports); stop them on exit."""
    sc = config.stack
    pods: list[PodProc] = []
    for _ in range(sc.pods):
        pod = start_pod(sc.pod.args(quiet=True))
        stop.callback(pod.stop)
        pods.append(pod)
    model = {
        "name": sc.model,
        "endpoints": [p.grpc_address for p in pods],
        "dynamic_batching": {"max_queue_delay_microseconds": 5000},
    }
    gateways = start_gateways(sc.gateways, [model], args=QUIET)
    stop.callback(gateways.stop)
    sources = gateways.metrics_urls
    kinds = dict.fromkeys(sources, "gateway")
    pids = {name: g.pid for name, g in gateways.named().items()}
    for i, pod in enumerate(pods):
        sources[f"pod{i}"] = f"{pod.http_url}/metrics"
        kinds[f"pod{i}"] = "pod"
        pids[f"pod{i}"] = pod.pid
    targets = gateways.addresses(config.protocol)
    return _Stack(", ".join(targets), sources, kinds, pids, gateways, targets)


def _their_stack(config: TraceConfig) -> _Stack:
    """A running stack: name each metrics URL by what it serves (gateway, pod0, ...)."""
    assert config.target is not None
    sources: dict[str, str] = {}
    kinds: dict[str, str] = {}
    counts: dict[str, int] = {}
    for url in config.metrics:
        scrape = fetch_metrics(url)
        kind = "other" if scrape is None else scrape.kind
        n = counts.get(kind, 0)
        counts[kind] = n + 1
        name = {"gateway": "gateway", "pod": "pod", "other": "metrics"}[kind]
        name = f"{name}{n}" if kind != "gateway" or n else name
        sources[name] = url
        kinds[name] = kind
    return _Stack(config.target, sources, kinds, dict(config.pids))


def _run_load(
    config: TraceConfig, stack: _Stack, console: Console
) -> tuple[OpenLoopResult, Monitor]:
    trace = config.trace
    targets = stack.spread or (stack.target,)
    spec = ClientSpec(
        config.protocol,
        targets[0],
        SimPayload(model=config.stack.model, rows=config.rows),
        verify_every=config.verify_every,
        timeout_s=config.timeout_s,
    )
    load = config.load()
    load = replace(load, processes=spread_processes(load.processes, len(targets)))
    progress = multiprocessing.get_context("spawn").Queue()
    title = f"trace {trace.name} ({config.protocol}, {load.processes} generator process(es))"
    view = LiveView(console, title, trace.duration_s)
    monitor = Monitor(
        seconds=int(-(-trace.duration_s // 1)),
        sources=stack.sources,
        pids=stack.pids,
        model=config.stack.model,
        progress=progress,
        view=view,
        offered=lambda k: trace.expected(k, min(k + 1, trace.duration_s)),
    )
    try:
        with view:
            result = run_open_loop_spread(spread_specs(spec, targets), load, monitor, progress)
            monitor.finish()
    except BaseException:
        monitor.close()
        raise
    finally:
        progress.close()
    return result, monitor


def run_trace(config: TraceConfig, console: Console | None = None) -> TraceRun:
    """Run the trace (blocking), print the summary, write the report and the plots."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: don't squeeze the table into 80 columns
            console = Console(width=160)
    started = time.time()
    with contextlib.ExitStack() as stop:
        stack = _their_stack(config) if config.target else _own_stack(config, stop)
        if config.target is None:
            console.print(f"stack up: {', '.join(f'{k} pid {v}' for k, v in stack.pids.items())}")
        result, monitor = _run_load(config, stack, console)
        gone = None if stack.gateways is None else stack.gateways.gone()
        if gone is not None:
            raise RuntimeError(gone)
    trace = config.trace
    phases = summarize(trace, result, monitor.records, config.slo_ms)
    doc = {
        "benchmark": "trace",
        "started_unix": round(started, 3),
        "trace": trace.describe(),
        "config": _config_dict(config),
        "slo_ms": config.slo_ms,
        "note": machine_note(),
        "valid": result.valid,
        "invalid_reason": result.invalid,
        "processes": stack.pids,
        "metrics_urls": stack.sources,
        "metrics_kinds": stack.kinds,
        "load": result.as_dict(),
        "summary": [p.as_dict() for p in phases],
        "seconds": series(trace, result, monitor.records, config.slo_ms),
    }
    out = config.out
    files = [out / "report.json"]
    if config.plots:
        from loadtest.traces.plots import write_plots

        files += write_plots(doc, out)
    doc["files"] = [str(f) for f in files]
    write_json(files[0], doc)
    notes = [
        f"offered, served, goodput: requests/s; goodput: answered within the {config.slo_ms:g} ms"
        " SLO; latency from the scheduled send time; µs/req: CPU of each process per answer",
        f"wrote {', '.join(str(f) for f in files)}",
        machine_note(),
    ]
    if result.error_sample:
        notes.insert(0, f"first error: {result.error_sample}")
    title = f"Trace {trace.name} -> {stack.target} ({config.protocol}, {config.rows} row(s)/req)"
    print_summary(title, phases, result, notes, console)
    return TraceRun(doc, result, phases, files)


def _config_dict(config: TraceConfig) -> dict[str, Any]:
    doc = {k: v for k, v in asdict(config).items() if k not in ("trace", "stack")}
    doc["out_dir"] = str(config.out)
    doc["pids"] = dict(config.pids)
    if config.target is None:
        sc = config.stack
        doc["stack"] = {
            "pods": sc.pods,
            "gateways": sc.gateways,
            "fixed_ms": sc.fixed_ms,
            "per_row_ms": sc.per_row_ms,
            "max_batch": sc.max_batch,
            "max_queue_delay_us": 5000,
        }
    return doc
