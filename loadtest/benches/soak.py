"""``loadtest soak``: minutes of mixed load at a fraction of the pods' limit; do RSS, fds and
event-loop tasks stay flat, and is every admitted request answered?

Against a stack of its own (``pods`` simulated pods, ``F + c·n`` device time, behind one
gateway, on loopback) or a running one (``target``), open-loop Poisson load at ``fraction`` of
the pods' physical limit runs for ``duration_s`` after ``warmup_s``, mixing the protocols in
their shares with a share of bad requests and of clients that leave mid-request
(``soak_mix``, sent by ``soak_client``). Every ``sample_s`` it reads each process's RSS, open
fds and (the gateway) event-loop tasks (``soak_probe``), prints them at the end of each
``interval_s``, and at the end fits each figure's trend (``soak_trend``: the rule that calls
it flat is there). It prints the tables (``soak_report``) and writes JSON.

The run passes when nothing admitted was lost (every good request answered: ok, or rejected
explicitly with 429 / RESOURCE_EXHAUSTED), no good request was answered with another error, no
bad request was answered other than 400 / INVALID_ARGUMENT, no process under test exited, and
every figure is flat.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from loadtest.benches.soak_client import SoakLoad, SoakShare, soak_job
from loadtest.benches.soak_mix import Category, Lane, Tally, mix_lanes
from loadtest.benches.soak_probe import SoakSampler, Watched
from loadtest.benches.soak_report import print_interval, print_report, soak_doc
from loadtest.benches.soak_trend import Trend, trends
from loadtest.clients.base import CLIENT_KINDS, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.generators.workers import run_in_processes
from loadtest.results.open_loop_result import OVERFLOW, OpenLoopResult
from loadtest.results.report import write_json
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from loadtest.stack.simpod_args import SimPod

__all__ = ["SoakConfig", "SoakRun", "SoakTarget", "run_soak", "target_watched", "verdict"]

DEFAULT_JSON = Path("reports/soak.json")


@dataclass(frozen=True, slots=True)
class SoakConfig:
    duration_s: float = 300.0
    interval_s: float = 60.0
    warmup_s: float = 10.0  # load before the window opens (not read, tallied as warm-up)
    fraction: float = 0.8  # of the pods' physical limit
    protocols: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(CLIENT_KINDS, 1.0))
    bad_share: float = 0.02
    disconnect_share: float = 0.02
    pods: int = 2
    fixed_ms: float = 20.0  # the make-run stack's pods
    per_row_ms: float = 2.0
    max_batch: int = 16
    max_queue_delay_us: int = 5000
    rows: int = 1
    processes: int | None = None  # None: one per ``rate_per_process`` req/s
    rate_per_process: float = 1000.0
    timeout_s: float = 10.0
    sample_s: float = 1.0
    verify_every: int = 16
    seed: int = 1
    json_path: Path = DEFAULT_JSON
    # A running server instead: its HTTP base URL, its gRPC host:port, the rows/s the fraction
    # is of, the gateway's metrics URL (for its task count) and the processes to read by pid.
    target: str | None = None
    grpc_target: str | None = None
    target_limit_rows_s: float | None = None
    target_metrics: str | None = None
    target_pids: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.duration_s > 0 or not self.interval_s > 0 or self.warmup_s < 0:
            raise ValueError("duration and interval must be > 0, warm-up >= 0")
        if not self.fraction > 0:
            raise ValueError(f"fraction must be > 0, got {self.fraction}")
        if self.target is not None and not (self.target_limit_rows_s or 0) > 0:
            raise ValueError("a target needs the rows/s its fraction is of (target_limit_rows_s)")
        lanes = mix_lanes(self.protocols, self.bad_share, self.disconnect_share)  # or raises
        wants_grpc = any(is_grpc(lane.wire) for lane, _ in lanes)
        if self.target is not None and self.grpc_target is None and wants_grpc:
            raise ValueError("a target with gRPC lanes in its mix needs a grpc_target")

    @property
    def intervals(self) -> int:
        return max(1, math.ceil(self.duration_s / self.interval_s - 1e-9))

    @property
    def pod(self) -> SimPod:
        return SimPod(self.fixed_ms, self.per_row_ms, self.max_batch)

    def limit_rows_s(self) -> float:
        """The rows/s the fraction is of: the started pods' physical limit, or the target's."""
        if self.target is not None:
            assert self.target_limit_rows_s is not None
            return self.target_limit_rows_s
        return self.pods * self.pod.limit_rows_s

    def generator_processes(self, rate: float) -> int:
        if self.processes is not None:
            return self.processes
        return max(1, math.ceil(rate / self.rate_per_process))


@dataclass(frozen=True, slots=True)
class SoakTarget:
    """Where the soak sends (HTTP base URL, gRPC ``host:port``), what it reads, and a check
    that the processes it started still run (None: they do)."""

    http_url: str | None
    grpc_target: str | None
    watched: tuple[Watched, ...]
    gone: Callable[[], str | None] = lambda: None


@dataclass(slots=True)
class SoakRun:
    """What a soak measured, and its verdict (``reasons`` empty: it passed)."""

    lanes: tuple[tuple[Lane, float], ...]
    result: OpenLoopResult
    tally: Tally
    sampler: SoakSampler
    trends: list[Trend]
    gone: str | None
    reasons: list[str]

    @property
    def passed(self) -> bool:
        return not self.reasons


def verdict(
    by_category: Mapping[Category, Counter[str]], unsent: int, found: list[Trend], gone: str | None
) -> list[str]:
    """Why a soak failed (empty: it passed), from its outcomes by category, the requests its
    generator could not send, the trends and a process that exited."""
    good, bad = by_category.get("good", Counter()), by_category.get("bad", Counter())
    reasons = []
    if good["lost"] or unsent:
        reasons.append(f"{good['lost'] + unsent} good request(s) lost (never answered)")
    if good["failed"]:
        reasons.append(f"{good['failed']} good request(s) answered with an error")
    if bad["wrong"]:
        reasons.append(f"{bad['wrong']} bad request(s) not answered 400 / INVALID_ARGUMENT")
    for t in found:
        if not t.flat:
            reasons.append(
                f"{t.process} {t.metric} not flat (grew {t.growth:.4g} > {t.allowed:.4g})"
            )
    if gone is not None:
        reasons.append(gone)
    return reasons


def target_watched(config: SoakConfig) -> tuple[Watched, ...]:
    """What is read of a running target: each ``target_pids`` process, the one named
    ``gateway`` with its task count from ``target_metrics`` and the connections on the target's
    port (only the task count, when no gateway pid is given)."""
    assert config.target is not None
    names = dict(config.target_pids)
    metrics, port = config.target_metrics, urlsplit(config.target).port
    watched = [
        Watched(n, pid, metrics, port) if n == "gateway" else Watched(n, pid)
        for n, pid in names.items()
    ]
    if metrics is not None and "gateway" not in names:
        watched.insert(0, Watched("gateway", None, metrics))
    return tuple(watched)


@contextlib.contextmanager
def _stack(config: SoakConfig) -> Iterator[SoakTarget]:
    """The target: started pods and a gateway (stopped on exit), or the running one."""
    if config.target is not None:
        yield SoakTarget(config.target, config.grpc_target, target_watched(config))
        return
    pods: list[PodProc] = []
    gateway: GatewayProc | None = None
    try:
        for _ in range(config.pods):
            pods.append(start_pod(config.pod.args(quiet=True)))
        model = {
            "name": "sim",
            "endpoints": [p.grpc_address for p in pods],
            "dynamic_batching": {"max_queue_delay_microseconds": config.max_queue_delay_us},
        }
        gateway = start_gateway([model], args=["--log-level", "WARNING"])
        procs: list[GatewayProc | PodProc] = [gateway, *pods]
        watched = [Watched("gateway", gateway.pid, gateway.metrics_url, gateway.http_port)]
        watched += [Watched(f"pod{i}", p.pid) for i, p in enumerate(pods)]

        def gone() -> str | None:
            for w, p in zip(watched, procs, strict=True):
                if p.popen.poll() is not None:
                    return f"{w.name} exited with {p.popen.returncode} during the soak"
            return None

        yield SoakTarget(gateway.http_url, gateway.grpc_address, tuple(watched), gone)
    finally:
        if gateway is not None:
            gateway.stop()
        for pod in reversed(pods):
            pod.stop()


def run_soak(config: SoakConfig) -> SoakRun:
    """Run the soak, print every interval and the tables, write the JSON report."""
    started = time.time()
    lanes = mix_lanes(config.protocols, config.bad_share, config.disconnect_share)
    limit = config.limit_rows_s()
    rate = config.fraction * limit / config.rows
    processes = config.generator_processes(rate)
    load = OpenLoopConfig(
        rate=rate,
        duration_s=config.duration_s,
        warmup_s=config.warmup_s,
        processes=processes,
        seed=config.seed,
        drain_s=config.timeout_s + 1.0,
    )
    print(
        f"soak: {rate:,.0f} req/s ({config.fraction:g} of {limit:,.0f} rows/s) for "
        f"{config.duration_s:g} s after {config.warmup_s:g} s warm-up, {processes} generator "
        f"process(es); a line every {config.interval_s:g} s",
        flush=True,
    )
    with _stack(config) as target:
        job = SoakLoad(
            lanes,
            target.http_url,
            target.grpc_target,
            load,
            config.interval_s,
            config.intervals,
            payload=SimPayload(rows=config.rows),
            timeout_s=config.timeout_s,
            verify_every=config.verify_every,
            seed=config.seed,
        )
        sampler = SoakSampler(
            target.watched,
            config.interval_s,
            config.duration_s,
            config.sample_s,
            lambda k, reading: print_interval(config, k, reading),
        )
        results = run_in_processes(
            soak_job, job, processes, load.window, sampler, result_timeout_s=load.drain_s + 30.0
        )
        gone = target.gone()
    shares = [r for r in results if isinstance(r, SoakShare)]
    result = OpenLoopResult.merge_parallel(shares)
    tally = Tally.merge(s.tally for s in shares)
    found = trends(sampler.readings, config.duration_s)
    reasons = verdict(
        tally.by_category([lane for lane, _ in lanes]),
        result.errors.get(OVERFLOW, 0),
        found,
        gone,
    )
    run = SoakRun(lanes, result, tally, sampler, found, gone, reasons)
    print_report(config, run)
    write_json(config.json_path, soak_doc(config, run, started, limit))
    print(f"wrote {config.json_path}")
    return run
