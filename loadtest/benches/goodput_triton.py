"""``loadtest goodput --runtime triton``: the gateway in front of a real Triton beside Triton's own
dynamic batcher, on the same simulated device and the same grid of rates, against a limit
measured in the same run.

One ``tritonserver`` (``stack.triton``) serves two models of the project's repository: ``sim``
(Triton's batcher off) and ``sim_batched`` (the same ``model.py``, F and c, with Triton's
``dynamic_batching``). First the limit is measured: full batches (``max_batch_size`` rows per
request) sent straight to ``sim`` by a closed loop at a concurrency of 2, so the instance always
has the next batch queued. Then, as fractions of that limit, every grid point is offered to each
side (so both have a figure at every rate) and each bisects on its own: the gateway, batching,
in front of ``sim``; and ``sim_batched`` sent to directly. The limit is measured again at the
end; goodput is reported as a fraction of the higher of the two. The true F and c are read from
``sim``'s ``config.pbtxt`` and reported beside the gateway's fitted ones.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from loadtest.benches.gateways_probe import GatewaysProbe
from loadtest.benches.goodput import SweepTarget, backend_model, goodput_doc, run_sweep
from loadtest.benches.goodput_report import print_steps
from loadtest.benches.goodput_sweep import Sweep
from loadtest.benches.goodput_triton_report import print_rates, print_triton_summary
from loadtest.clients.base import ClientSpec
from loadtest.clients.payload import SimPayload
from loadtest.generators.closed_loop import ClosedLoopConfig, run_closed_loop
from loadtest.probes.cpu import CpuSource
from loadtest.probes.metrics import Scrape, fetch_metrics
from loadtest.probes.stack import BatchCounts
from loadtest.results.report import write_json
from loadtest.stack.gateways import Gateways, start_gateways
from loadtest.stack.triton import MODEL_REPOSITORY, TritonProc, start_triton

if TYPE_CHECKING:
    from loadtest.benches.goodput import GoodputConfig

__all__ = [
    "BATCHED_MODEL",
    "DEFAULT_TRITON_GRID",
    "GATEWAY_MODEL",
    "SIDES",
    "MeasuredLimit",
    "TritonModel",
    "bench_repository",
    "parse_model_config",
    "run_triton_goodput",
    "side_label",
    "triton_config",
]

GATEWAY_MODEL = "sim"  # Triton's batcher off: the gateway in front batches
BATCHED_MODEL = "sim_batched"  # Triton's own dynamic batcher on
SIDES = ("gateway", "triton")  # Sweep.mode: the gateway in front of sim; Triton's batcher
DEFAULT_TRITON_GRID = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
LIMIT_CONCURRENCY = 2  # full batches in flight: one executing, the next queued
_IDLE_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class TritonModel:
    """What a model's ``config.pbtxt`` sets that the bench reports: its simulated device (F ms,
    c ms/row), ``max_batch_size``, and Triton's max queue delay (None: no dynamic batching)."""

    name: str
    fixed_ms: float
    per_row_ms: float
    max_batch: int
    max_queue_delay_us: int | None


def _field(text: str, pattern: str, what: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise ValueError(f"config.pbtxt sets no {what}")
    return found.group(1)


def _parameter(text: str, key: str) -> str:
    pattern = rf'key:\s*"{key}"\s*,?\s*value:\s*\{{\s*string_value:\s*"([^"]*)"'
    return _field(text, pattern, f"parameter {key!r}")


def parse_model_config(text: str) -> TritonModel:
    """The figures of a ``sim``-style model from its ``config.pbtxt`` text (comments ignored)."""
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    batching = re.search(r"dynamic_batching\s*\{([^}]*)\}", text)
    delay: int | None = None
    if batching is not None:
        found = re.search(r"max_queue_delay_microseconds:\s*(\d+)", batching.group(1))
        delay = int(found.group(1)) if found else 0
    return TritonModel(
        name=_field(text, r'name:\s*"([^"]+)"', "name"),
        fixed_ms=float(_parameter(text, "fixed_ms")),
        per_row_ms=float(_parameter(text, "per_row_ms")),
        max_batch=int(_field(text, r"max_batch_size:\s*(\d+)", "max_batch_size")),
        max_queue_delay_us=delay,
    )


def read_models(repository: Path = MODEL_REPOSITORY) -> tuple[TritonModel, TritonModel]:
    """``sim`` and ``sim_batched`` from ``repository``; they must simulate the same device."""
    sim, batched = (
        parse_model_config((repository / name / "config.pbtxt").read_text())
        for name in (GATEWAY_MODEL, BATCHED_MODEL)
    )
    if (sim.fixed_ms, sim.per_row_ms, sim.max_batch) != (
        batched.fixed_ms,
        batched.per_row_ms,
        batched.max_batch,
    ):
        raise ValueError(f"{sim.name} and {batched.name} simulate different devices")
    if sim.max_queue_delay_us is not None or batched.max_queue_delay_us is None:
        raise ValueError(f"Triton batches {BATCHED_MODEL} only, not {GATEWAY_MODEL}")
    return sim, batched


def triton_config(config: GoodputConfig, sim: TritonModel) -> GoodputConfig:
    """``config`` for a Triton run: the true device of ``sim``, one Triton, both sides at every
    grid point (no early stop)."""
    return replace(
        config,
        pods=(1,),
        modes=SIDES,
        fixed_ms=sim.fixed_ms,
        per_row_ms=sim.per_row_ms,
        max_batch=sim.max_batch,
        stop_after=max(config.stop_after, len(config.grid)),
    )


def bench_repository(into: Path, source: Path = MODEL_REPOSITORY) -> Path:
    """A model repository in ``into`` holding only ``sim`` and ``sim_batched`` (links to
    ``source``'s), so Triton starts no stub for the identity models."""
    for name in (GATEWAY_MODEL, BATCHED_MODEL):
        (into / name).symlink_to((source / name).resolve(), target_is_directory=True)
    return into


def side_label(mode: str, gateways: int = 1, delay_us: int | None = None) -> str:
    """How reports name a side."""
    if mode == "gateway":
        return "gateway → triton" if gateways == 1 else f"{gateways} gw → triton"
    return "triton batcher" if delay_us is None else f"triton batcher {delay_us} µs"


@dataclass(frozen=True, slots=True)
class MeasuredLimit:
    """Rows/s served with full batches sent straight to Triton, and how that was measured."""

    rows_s: float
    batch_rows: int
    concurrency: int
    protocol: str
    requests: int
    errors: int
    p99_us: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_s": round(self.rows_s, 1)}


def measure_limit(config: GoodputConfig, triton: TritonProc) -> MeasuredLimit:
    """Full batches to ``sim`` over gRPC (the wire the gateway sends on), closed loop."""
    protocol = "grpc"
    spec = ClientSpec(
        protocol,
        triton.grpc_address,
        SimPayload(model=GATEWAY_MODEL, rows=config.max_batch),
        verify_every=config.verify_every,
        timeout_s=config.timeout_s,
    )
    load = ClosedLoopConfig(
        concurrency=LIMIT_CONCURRENCY,
        duration_s=config.duration_s,
        warmup_s=config.warmup_s,
        processes=0,
        drain_s=config.timeout_s + 1.0,
    )
    result = run_closed_loop(spec, load)
    if result.ok == 0:
        raise RuntimeError(f"the limit run served nothing: {result.error_sample or result.errors}")
    return MeasuredLimit(
        rows_s=result.throughput * config.max_batch,
        batch_rows=config.max_batch,
        concurrency=LIMIT_CONCURRENCY,
        protocol=protocol,
        requests=result.ok,
        errors=result.error_count,
        p99_us=result.summary().p99_us,
    )


def triton_counter(scrape: Scrape, name: str, model: str) -> float | None:
    """Triton's counter ``name`` for ``model`` (the text parser names its samples ``_total``)."""
    value = scrape.total(f"{name}_total", model=model)
    return scrape.total(name, model=model) if value is None else value


class TritonProbe(GatewaysProbe):
    """A step's CPU, and the batches Triton executed for ``model`` over the window (its
    ``nv_inference_count`` / ``nv_inference_exec_count``); no gateway is read."""

    def __init__(self, procs: Mapping[str, CpuSource], metrics_url: str, model: str) -> None:
        super().__init__(procs, {}, model)
        self.metrics_url = metrics_url
        self._start: Scrape | None = None

    def _counts(self, scrape: Scrape | None) -> BatchCounts | None:
        if scrape is None:
            return None
        rows = triton_counter(scrape, "nv_inference_count", self.model)
        batches = triton_counter(scrape, "nv_inference_exec_count", self.model)
        return None if rows is None or batches is None else BatchCounts(rows, batches)

    def start(self) -> None:
        self._start = fetch_metrics(self.metrics_url, 2.0)
        super().start()

    def stop(self) -> None:
        super().stop()
        before, after = self._counts(self._start), self._counts(fetch_metrics(self.metrics_url))
        self.batches = None if before is None or after is None else after - before


def triton_pending(scrape: Scrape | None, model: str) -> float | None:
    """Requests Triton holds for ``model`` (queued or executing), if its metrics say."""
    return (
        None if scrape is None else scrape.total("nv_inference_pending_request_count", model=model)
    )


@dataclass(frozen=True, slots=True)
class TritonBatcherTarget(SweepTarget):
    """Triton sent to directly: its batch sizes from its metrics; a step's backlog waited out
    on its pending request count."""

    triton_metrics: str = ""

    def probe(self) -> GatewaysProbe:
        return TritonProbe(self.procs, self.triton_metrics, self.model)

    def wait_idle(self, timeout_s: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if not triton_pending(fetch_metrics(self.triton_metrics), self.model):
                break
            time.sleep(_IDLE_POLL_S)
        return time.monotonic() - start


def _gone(triton: TritonProc, gateways: Gateways | None = None) -> Callable[[], str | None]:
    def gone() -> str | None:
        what = None if gateways is None else gateways.gone()
        code = triton.popen.poll()
        if what is None and code is not None:
            what = f"tritonserver exited with {code}"
        return None if what is None else f"{what} during a step"

    return gone


def gateway_target(gateways: Gateways, triton: TritonProc) -> SweepTarget:
    """The gateway replicas in front of Triton's ``sim``."""
    named = gateways.named()
    procs: dict[str, CpuSource] = {**named, "triton": triton}
    return SweepTarget(
        gateways.addresses("http-json"),
        gateways.addresses("grpc"),
        gateways.metrics_urls,
        procs,
        _gone(triton, gateways),
        tuple(named),
        GATEWAY_MODEL,
    )


def batcher_target(triton: TritonProc) -> TritonBatcherTarget:
    """Triton's ``sim_batched``, sent to directly."""
    return TritonBatcherTarget(
        (triton.http_url,),
        (triton.grpc_address,),
        {},
        {"triton": triton},
        _gone(triton),
        (),
        BATCHED_MODEL,
        triton_metrics=triton.metrics_url,
    )


def _print_limit(when: str, limit: MeasuredLimit) -> None:
    print(
        f"measured limit {when}: {limit.rows_s:.0f} rows/s ({limit.batch_rows}-row requests "
        f"straight to Triton's {GATEWAY_MODEL}, closed loop, concurrency {limit.concurrency}, "
        f"{limit.protocol}; p99 {limit.p99_us / 1000:.1f} ms, errors {limit.errors})",
        flush=True,
    )


def _sweeps(
    config: GoodputConfig, triton: TritonProc, limit: float, delay_us: int | None, log: IO[bytes]
) -> list[Sweep]:
    """Each gateway replica count's sweeps in front of ``sim``, then Triton's batcher's."""
    sweeps: list[Sweep] = []
    for g in config.gateways:
        model = backend_model(config, "batching", [triton])
        gateways = start_gateways(g, [model], stdout=log)
        try:
            for run in range(config.repeats):
                label = side_label("gateway", g)
                sweeps.append(Sweep(1, "gateway", limit, run=run, gateways=g, label=label))
                run_sweep(config, sweeps[-1], gateway_target(gateways, triton))
        finally:
            gateways.stop()
    for run in range(config.repeats):
        label = side_label("triton", delay_us=delay_us)
        sweeps.append(Sweep(1, "triton", limit, run=run, gateways=0, label=label))
        run_sweep(config, sweeps[-1], batcher_target(triton))
    return sweeps


def run_triton_goodput(config: GoodputConfig) -> list[Sweep]:
    """Start Triton, measure the limit, sweep both sides, measure the limit again, print the
    tables, write the JSON (and Triton's and the gateways' log beside it).

    The grid's fractions are of the first limit; the goodput's of the higher of the two (the
    stricter: a noisy moment can only lower a measurement)."""
    started = time.time()
    sim, batched = read_models()
    config = triton_config(config, sim)
    log_path = config.json_path.with_suffix(".triton.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="goodput-triton-") as tmp, log_path.open("wb") as log:
        triton = start_triton(bench_repository(Path(tmp)), stdout=log)
        try:
            before = measure_limit(config, triton)
            _print_limit("before the sweeps", before)
            sweeps = _sweeps(config, triton, before.rows_s, batched.max_queue_delay_us, log)
            after = measure_limit(config, triton)
            _print_limit("after the sweeps", after)
        finally:
            triton.stop()
    limits = (before, after)
    for s in sweeps:  # goodput fractions of the stricter limit
        s.limit_rows_s = max(m.rows_s for m in limits)
    print_steps(sweeps, config)
    print_rates(sweeps, config)
    print_triton_summary(sweeps, config, limits, sim, batched)
    doc = goodput_doc(config, sweeps, started)
    doc["runtime"] = {
        "measured_limits": [m.as_dict() for m in limits],
        "grid_limit_rows_s": round(before.rows_s, 1),
        "true_cost": {"fixed_ms": sim.fixed_ms, "per_row_ms": sim.per_row_ms},
        "triton_max_queue_delay_us": batched.max_queue_delay_us,
        "log": str(log_path),
    }
    write_json(config.json_path, doc)
    print(f"wrote {config.json_path} (Triton's and the gateways' log: {log_path})")
    return sweeps
