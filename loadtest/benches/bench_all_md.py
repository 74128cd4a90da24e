"""The combined benchmark report as markdown: the headline figures of each section, read from
the JSON documents (so a saved ``bench.json`` renders the same)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["markdown", "md_table"]

Doc = Mapping[str, Any]


def md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, figures right-aligned (the first column left)."""
    align = [":--" if i == 0 else "--:" for i in range(len(columns))]
    lines = [columns, align, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def _n(value: Any, spec: str = ",.0f", scale: float = 1.0) -> str:
    return "-" if value is None else format(value / scale, spec)


def _ms(us: Any) -> str:
    return "-" if us is None else f"{us / 1000:.2f} ms"


def _datapath(doc: Doc) -> str:
    rows = []
    for r in doc.get("results", []):
        d, g = r["direct"], r["gateway"]
        rows.append(
            [
                r["protocol"],
                _n(d["throughput_rps"]),
                _n(g["throughput_rps"]),
                _n(r.get("ratio_gateway_over_direct_rps"), ".2f"),
                _ms(d["latency"]["p50_us"]),
                _ms(g["latency"]["p50_us"]),
                _ms(d["latency"]["p99_us"]),
                _ms(g["latency"]["p99_us"]),
                _n(r.get("gateway_cpu_us_per_req")),
                f"{_n(r.get('pod_cpu_us_per_req_direct'))} / "
                f"{_n(r.get('pod_cpu_us_per_req_via_gateway'))}",
            ]
        )
    c = doc.get("config", {})
    head = (
        f"Closed loop, {c.get('concurrency')} concurrent x {c.get('processes')} process(es), "
        f"{c.get('duration_s')} s x {c.get('rounds')} round(s) per side, pod F = "
        f"{c.get('pod_fixed_ms')} ms. ratio = gateway req/s / direct req/s."
    )
    columns = ["protocol", "direct req/s", "gateway req/s", "ratio", "direct p50", "gateway p50"]
    columns += ["direct p99", "gateway p99", "gateway CPU-µs/req", "pod CPU-µs/req direct / via gw"]
    return head + "\n\n" + md_table(columns, rows)


def _goodput(doc: Doc) -> str:
    rows = []
    repeated = doc.get("config", {}).get("repeats", 1) > 1
    for s in doc.get("sweeps", []):
        step = s.get("goodput_step") or {}
        run = f", run {s.get('run', 0) + 1}" if repeated else ""
        gateways = s.get("gateways", 1)
        replicas = f", {gateways} gateways" if gateways != 1 else ""
        rows.append(
            [
                f"{s['pods']} pod(s){replicas}, {s['mode']}{run}",
                _n(s.get("physical_limit_rows_s")),
                _n(s.get("goodput_rows_s")),
                _n(s.get("goodput_fraction"), ".0%"),
                _ms(step.get("p99_us")),
                _n(step.get("mean_batch_rows"), ".1f"),
                _n(step.get("gateway_cpu_us_per_req")),
            ]
        )
    c = doc.get("config", {})
    head = (
        f"Open loop ({c.get('protocol')}), goodput = most rows/s served with p99 <= "
        f"{c.get('slo_ms')} ms; pod F = {c.get('fixed_ms')} ms + {c.get('per_row_ms')} ms/row."
    )
    columns = ["setup", "pods' limit rows/s", "goodput rows/s", "of limit", "p99 there"]
    columns += ["mean batch rows", "gateway CPU-µs/req"]
    return head + "\n\n" + md_table(columns, rows)


def _discovery(doc: Doc) -> str:
    lat = doc.get("event_to_routing_ms", {})
    row = [
        _n(doc.get("endpoints")),
        _n(doc.get("changes_per_s")),
        _n(doc.get("cpu_fraction"), ".2%"),
        _n(doc.get("cpu_us_per_change")),
        _n(doc.get("list_ms"), ".1f"),
        _n(lat.get("p50"), ".2f"),
        _n(lat.get("p99"), ".2f"),
    ]
    columns = ["endpoints", "changes/s", "CPU of one core", "CPU-µs/change", "initial list ms"]
    columns += ["event to routing p50 ms", "p99 ms"]
    return md_table(columns, [row])


def _autoscale(doc: Doc) -> str:
    rows = [
        [
            o["trace"],
            o["policy"],
            _n(o["above_target_s"], ".1f"),
            _n(o["replica_s"]),
            str(o["direction_changes"]),
            str(o["peak_replicas"]),
        ]
        for o in doc.get("outcomes", [])
    ]
    columns = ["trace", "policy", "s above target", "replica-s", "direction changes", "peak"]
    head = f"A simulation (fluid queue), {doc.get('config', {}).get('duration_s')} s per trace."
    return head + "\n\n" + md_table(columns, rows)


def _receiver(doc: Doc) -> str:
    local, remote, tick = doc.get("in_process", {}), doc.get("grpc", {}), doc.get("tick", {})
    rows = [
        [
            "in-process (decode + record)",
            _n(local.get("reports_per_core_s")),
            _n(local.get("us_per_report"), ".2f"),
        ],
        [
            "gRPC stream (server CPU)",
            _n(remote.get("reports_per_core_s")),
            _n(remote.get("us_per_report"), ".2f"),
        ],
    ]
    c = doc.get("config", {})
    head = (
        f"{c.get('gateways')} gateways x {c.get('models')} models at 4 reports/s: "
        f"{_n(doc.get('offered_reports_per_s'))} reports/s offered. Decision tick over "
        f"{tick.get('models')} models: {_n(tick.get('tick_ms_median'), '.1f')} ms (median)."
    )
    return head + "\n\n" + md_table(["path", "reports/s per core", "µs/report"], rows)


def _ceiling(doc: Doc) -> str:
    rows = [
        [
            r["protocol"],
            _n(r.get("highest_sustained_rps")),
            _n(r.get("generator_cpu_us_per_req")),
            _n(r.get("estimated_ceiling_rps")),
            r.get("limited_by", ""),
            r.get("stopped", ""),
        ]
        for r in doc.get("results", [])
    ]
    head = (
        "One open-loop generator process against a zero-cost simpod; estimate = 1e6 / "
        "generator CPU-µs per request at the highest rate sustained."
    )
    columns = ["protocol", "highest sustained req/s", "generator CPU-µs/req", "estimate req/s"]
    return head + "\n\n" + md_table([*columns, "limited by", "stopped"], rows)


SECTION_TITLES: dict[str, tuple[str, Callable[[Doc], str]]] = {
    "datapath": ("Data path: gateway vs direct to the pod", _datapath),
    "goodput": ("Goodput at the p99 SLO, with and without batching", _goodput),
    "discovery": ("Discovery under endpoint churn", _discovery),
    "autoscale": ("Autoscaling policies on the same traces", _autoscale),
    "receiver": ("The autoscaler's LoadReport intake per core", _receiver),
    "ceiling": ("The load generator's ceiling (per process)", _ceiling),
}


def markdown(report: Doc) -> str:
    """The combined report (``bench_all.combine``) as a markdown document."""
    m = report.get("machine", {})
    quick = " — **quick run: durations cut to seconds, figures not meaningful**"
    parts = [
        "# Benchmark report",
        f"Started {report.get('started_utc')}{quick if report.get('quick') else ''}. "
        f"Machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB, "
        f"Python {m.get('python')}; load average at start {m.get('load_average_1_5_15')}, "
        f"at end {m.get('load_average_at_end')}. Every process (generator, gateway, pods) "
        "shares these CPUs: compare ratios, not absolute rates.",
    ]
    for name, doc in report.get("sections", {}).items():
        title, render = SECTION_TITLES.get(name, (name, lambda d: ""))
        seconds = report.get("section_seconds", {}).get(name)
        parts.append(f"## {title}" + ("" if seconds is None else f" ({seconds:g} s)"))
        if "error" in doc:
            parts.append(f"**Failed:** `{doc['error']}`")
        else:
            parts.append(render(doc))
    return "\n\n".join(parts) + "\n"
