"""``loadtest ab``: one A/B run between two targets, printed side by side and written as JSON.

The targets are running servers or pods and gateways started here (``ab_setups``); the load is
closed-loop at a concurrency, or open-loop at ``rate`` requests/s; A and B alternate for
``rounds`` rounds (``ab.run_ab``). A side of several gateway replicas gets its load spread evenly
over them (``stack.spread``); the generator processes are then raised, for both sides alike, to
a multiple of every side's replica count. Ratios are B/A: a p99 ratio of 1.3 means B's p99 is 30%
higher than A's. A traced gateway side (``gateway:trace=RATIO``) sends its spans to a loopback
OTLP collector started here; how many it received is printed and reported.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.benches.ab import AbResult, LoadPlan, run_ab
from loadtest.benches.ab_setups import Target, launched, parse_pids, parse_setup
from loadtest.clients.base import CLIENT_KINDS
from loadtest.clients.payload import SimPayload
from loadtest.generators.closed_loop import ClosedLoopConfig
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.results.report import machine_note, print_table, report_doc, write_json
from loadtest.stack.simpod_args import SimPod
from loadtest.stack.spread import spread_processes

__all__ = ["AbConfig", "ab_doc", "run_ab_bench"]

DEFAULT_JSON = Path("reports/bench-ab.json")


@dataclass(frozen=True, slots=True)
class AbConfig:
    """``a``/``b``: target specs (``ab_setups``). ``rate`` set: open loop; else closed loop."""

    a: str
    b: str
    protocol: str = "http-json"
    rate: float | None = None
    concurrency: int = 16  # closed loop: requests in flight per generator process
    rounds: int = 3  # A, B alternations, merged per side
    duration_s: float = 5.0  # measured, per round and side
    warmup_s: float = 1.0
    processes: int = 1  # generator processes
    rows: int = 1  # per request
    verify_every: int = 16  # one answer in N is checked
    timeout_s: float = 30.0  # per request
    fixed_ms: float = 0.0  # started pods' F: device ms per batch
    per_row_ms: float = 0.0  # started pods' c: device ms per row
    max_batch: int = 32
    max_queue_delay_us: int = 5000
    gateways: int = 1  # replicas of a gateway side that names none (``gateway:gateways=N``)
    a_pids: str = ""
    b_pids: str = ""
    json_path: Path = DEFAULT_JSON

    def __post_init__(self) -> None:
        if self.protocol not in CLIENT_KINDS:
            raise ValueError(f"protocol must be one of {CLIENT_KINDS}")

    def load(self) -> LoadPlan:
        if self.rate is not None:
            return OpenLoopConfig(
                rate=self.rate,
                duration_s=self.duration_s,
                warmup_s=self.warmup_s,
                processes=self.processes,
                drain_s=self.timeout_s + 1.0,
            )
        return ClosedLoopConfig(
            concurrency=self.concurrency,
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            processes=self.processes,
        )

    def describe(self) -> str:
        if self.rate is not None:
            load = f"open loop at {self.rate:g} req/s"
        else:
            load = f"closed loop, {self.concurrency} concurrent"
        return (
            f"{self.protocol}, {load} x {self.processes or 1} generator process(es), "
            f"{self.rows} row(s)/request, {self.duration_s:g} s measured after "
            f"{self.warmup_s:g} s warm-up, A and B alternating for {self.rounds} round(s)"
        )


def run_ab_bench(config: AbConfig) -> AbResult:
    """Start what the targets need, run the A/B, print the table, write the JSON report."""
    pod = SimPod(config.fixed_ms, config.per_row_ms, config.max_batch)
    setups = [parse_setup(text, pod, config.gateways) for text in (config.a, config.b)]
    replicas = math.lcm(*(s.gateways for s in setups))
    processes = spread_processes(config.processes, replicas)
    if processes != config.processes:
        print(f"generator processes: {processes} (a multiple of the sides' gateway replicas)")
        config = dataclasses.replace(config, processes=processes)
    pids = [parse_pids(config.a_pids), parse_pids(config.b_pids)]
    payload = SimPayload(rows=config.rows)
    started = time.time()
    with launched(setups, max_queue_delay_us=config.max_queue_delay_us, pids=pids) as targets:
        a, b = (
            t.side(
                config.protocol,
                payload,
                verify_every=config.verify_every,
                timeout_s=config.timeout_s,
            )
            for t in targets
        )
        result = run_ab(a, b, config.load(), config.rounds)
    spans = spans_received(targets)  # read once the gateways stopped: their last spans are in
    notes = [
        config.describe() + ".",
        f"Started pods: F {config.fixed_ms:g} ms + {config.per_row_ms:g} ms/row unless the "
        "target says otherwise. CPU-µs/req: the processes under test (started here, or given "
        "by --a-pids/--b-pids), CPU time over the windows / requests answered.",
        machine_note(),
    ]
    if spans:
        counts = ", ".join(f"{side.upper()} {n:,}" for side, n in spans.items())
        notes.insert(2, f"OTLP spans received by the loopback collector: {counts}.")
    print_table(
        f"A/B: A = {config.a}, B = {config.b}",
        ["figure", f"A: {config.a}", f"B: {config.b}", "B/A"],
        result.rows(),
        notes,
    )
    write_json(config.json_path, ab_doc(config, result, started, spans))
    print(f"wrote {config.json_path}")
    return result


def spans_received(targets: list[Target]) -> dict[str, int]:
    """The spans each traced side's collector received, by side (``a``, ``b``)."""
    return {
        side: t.sink.received for side, t in zip("ab", targets, strict=True) if t.sink is not None
    }


def ab_doc(
    config: AbConfig, result: AbResult, started: float, spans: dict[str, int] | None = None
) -> dict[str, Any]:
    """The JSON report of a run started at ``started`` (Unix seconds); ``spans``: the spans
    received from each traced side."""
    traced = {"otlp_spans_received": spans} if spans else {}
    return report_doc("ab", config, started, load=config.describe(), **result.as_dict(), **traced)
