"""``loadtest bench-all`` (``make bench``): the standard benchmark set, one combined report.

Runs, one after another: the data path (gateway vs direct, per protocol), goodput at a p99 SLO
(with and without batching, 1 and 2 pods), discovery under endpoint churn, the autoscaling
simulation, the autoscaler's LoadReport intake per core (``receiver-bench``), and the load
generator's own ceiling. Each prints its own tables as it goes and
returns its JSON document; they are combined into ``bench.json`` (each under its key, with the
machine's description and timestamps) and ``bench.md`` (the headline figures as markdown
tables). A section that fails is recorded as ``{"error": ...}`` and the others still run.
``quick`` shortens everything to seconds: the figures then only show that the set runs.
"""

from __future__ import annotations

import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadtest.benches.bench_all_md import markdown
from loadtest.results.report import write_json

__all__ = ["SECTIONS", "BenchAllConfig", "combine", "machine_info", "run_bench_all"]

SECTIONS = ("datapath", "goodput", "discovery", "autoscale", "receiver", "ceiling")


@dataclass(frozen=True, slots=True)
class BenchAllConfig:
    out_dir: Path = Path("reports")
    quick: bool = False
    sections: tuple[str, ...] = SECTIONS

    def __post_init__(self) -> None:
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ValueError(f"unknown sections {unknown}; choose from {SECTIONS}")


def _datapath(c: BenchAllConfig) -> dict[str, Any]:
    from loadtest.benches.datapath import BenchConfig, datapath_doc, run_bench

    config = BenchConfig(json_path=c.out_dir / "bench-datapath.json")
    if c.quick:
        config = replace(config, concurrency=4, duration_s=0.3, warmup_s=0.1, processes=0)
    started = time.time()
    return datapath_doc(config, run_bench(config), started)


def _goodput(c: BenchAllConfig) -> dict[str, Any]:
    from loadtest.benches.goodput import GoodputConfig, goodput_doc, run_goodput

    config = GoodputConfig(json_path=c.out_dir / "bench-goodput.json")
    if c.quick:
        config = replace(
            config, pods=(1,), grid=(0.2,), refine=0, duration_s=0.4, warmup_s=0.1, processes=0
        )
    started = time.time()
    return goodput_doc(config, run_goodput(config), started)


def _discovery(c: BenchAllConfig) -> dict[str, Any]:
    from loadtest.benches.discovery import DiscoveryBenchConfig, discovery_doc, run_discovery_bench

    config = DiscoveryBenchConfig()
    if c.quick:
        config = replace(config, endpoints=200, slice_size=50, churn_per_s=50.0, duration_s=0.5)
    return discovery_doc(config, run_discovery_bench(config))


def _autoscale(c: BenchAllConfig) -> dict[str, Any]:
    from loadtest.benches.autoscale import BenchConfig, autoscale_doc, run_bench

    config = BenchConfig(duration_s=150.0) if c.quick else BenchConfig()
    return autoscale_doc(config, run_bench(config))


def _receiver(c: BenchAllConfig) -> dict[str, Any]:
    from loadtest.benches.receiver import ReceiverBenchConfig, run_receiver_bench

    config = ReceiverBenchConfig()
    if c.quick:
        config = ReceiverBenchConfig(
            gateways=4, models=10, duration_s=0.2, ticks=3, client_processes=1, grpc_reports=2000
        )
    return run_receiver_bench(config)


def _ceiling(c: BenchAllConfig) -> dict[str, Any]:
    from loadtest.benches.ceiling import CeilingConfig, ceiling_doc, run_ceiling

    config = CeilingConfig(json_path=c.out_dir / "bench-ceiling.json")
    if c.quick:
        config = replace(config, rates=(200.0,), duration_s=0.3, warmup_s=0.1)
    started = time.time()
    return ceiling_doc(config, run_ceiling(config), started)


RUNNERS: dict[str, Callable[[BenchAllConfig], dict[str, Any]]] = {
    "datapath": _datapath,
    "goodput": _goodput,
    "discovery": _discovery,
    "autoscale": _autoscale,
    "receiver": _receiver,
    "ceiling": _ceiling,
}


def _first_line(path: Path, prefix: str) -> str | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was (others' load skews them)."""
    memory = (_first_line(Path("/proc/meminfo"), "MemTotal") or "").removesuffix(" kB")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _first_line(Path("/proc/cpuinfo"), "model name"),
        "memory_gib": round(int(memory) / 2**20, 1) if memory.isdigit() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def combine(
    sections: dict[str, dict[str, Any]],
    *,
    machine: dict[str, Any],
    started: float,
    finished: float,
    quick: bool,
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The combined report: every section's document under its name, plus where and when."""
    return {
        "benchmark": "bench-all",
        "started_unix": round(started, 3),
        "finished_unix": round(finished, 3),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "quick": quick,
        "machine": machine,
        "section_seconds": {k: round(v, 1) for k, v in (seconds or {}).items()},
        "sections": sections,
    }


def run_bench_all(config: BenchAllConfig) -> dict[str, Any]:
    """Run every section, write ``bench.json`` and ``bench.md`` into ``out_dir``; the report."""
    started = time.time()
    machine = machine_info()
    sections: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for name in config.sections:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.monotonic()
        try:
            sections[name] = RUNNERS[name](config)
        except Exception as exc:
            traceback.print_exc()
            sections[name] = {"error": f"{type(exc).__name__}: {exc}"}
        seconds[name] = time.monotonic() - t0
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc = combine(
        sections,
        machine=machine,
        started=started,
        finished=time.time(),
        quick=config.quick,
        seconds=seconds,
    )
    write_json(config.out_dir / "bench.json", doc)
    (config.out_dir / "bench.md").write_text(markdown(doc))
    print(f"wrote {config.out_dir / 'bench.json'} and {config.out_dir / 'bench.md'}")
    return doc
