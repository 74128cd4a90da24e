"""PNG plots of a trace run, drawn from its JSON report (matplotlib, Agg: no display needed).

``latency.png``: latency percentiles per second (log scale, the SLO as a line) above the
offered, served and goodput rates. ``throughput.png``: served and goodput against the offered
load, one point a second. ``server.png``: the gateway's queue depth and in-flight requests,
batch sizes (gateway and pods), CPU of each process, and replicas when the gateway reports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from loadtest.traces.shapes import Trace

__all__ = ["write_plots"]

_PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _x(seconds: list[dict[str, Any]]) -> list[float]:
    return [s["second"] + s["width_s"] / 2 for s in seconds]


def _trace_line(doc: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The trace's rate, finely sampled (a held rate's steps look upright)."""
    times, rates = zip(*doc["points"], strict=True)
    trace = Trace(doc["name"], times, rates, doc["duration_s"], doc["interpolation"])
    xs = np.linspace(0.0, trace.duration_s, 2001)
    return xs, trace.rate(xs)


def _latency(plt: Any, doc: dict[str, Any], path: Path) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    seconds = doc["seconds"]
    x = _x(seconds)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for key, label in _PERCENTILES:
        ys = [s["latency_us"][key] / 1000 if s["ok"] else None for s in seconds]
        top.plot(x, ys, marker=".", label=label)
    top.axhline(doc["slo_ms"], color="red", linestyle="--", linewidth=1, label="SLO")
    top.set_yscale("log")
    top.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    top.yaxis.set_minor_formatter(NullFormatter())
    top.set_ylabel("latency (ms)")
    low, high = top.get_ylim()
    top.set_ylim(low, high * 2.5)  # room for the legend above the lines
    top.legend(loc="upper left", ncol=6, fontsize="small")
    top.grid(True, which="both", alpha=0.3)
    trace = doc["trace"]
    bottom.plot(*_trace_line(trace), color="grey", label="offered (trace)")
    bottom.plot(x, [s["due_rps"] for s in seconds], ".", color="grey", label="due")
    bottom.plot(x, [s["served_rps"] for s in seconds], marker=".", label="served")
    bottom.plot(x, [s["goodput_rps"] for s in seconds], marker=".", label="goodput (≤ SLO)")
    bottom.set_ylabel("requests/s")
    bottom.set_xlabel("seconds")
    bottom.set_ylim(0, bottom.get_ylim()[1] * 1.2)
    bottom.legend(loc="upper left", ncol=4, fontsize="small")
    bottom.grid(True, alpha=0.3)
    fig.suptitle(f"Trace {trace['name']}: latency from the scheduled send time, per second")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _throughput(plt: Any, doc: dict[str, Any], path: Path) -> None:
    seconds = [s for s in doc["seconds"] if s["width_s"] >= 0.5]
    offered = [s["due_rps"] for s in seconds]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    top = max([*offered, *(s["served_rps"] for s in seconds), 1.0])
    ax.plot([0, top], [0, top], color="grey", linewidth=1, label="served = offered")
    ax.plot(offered, [s["served_rps"] for s in seconds], "o", alpha=0.7, label="served")
    ax.plot(offered, [s["goodput_rps"] for s in seconds], "x", alpha=0.7, label="goodput (≤ SLO)")
    ax.set_xlabel("offered (requests due that second, /s)")
    ax.set_ylabel("requests/s")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Trace {doc['trace']['name']}: throughput vs offered load")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _metric(seconds: list[dict[str, Any]], source: str, key: str) -> list[float | None]:
    return [((s.get("metrics") or {}).get(source) or {}).get(key) for s in seconds]


def _sampled(seconds: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """When the stack was sampled (gauges), and the middles of what counters cover."""
    at = [s.get("sampled_at_s") or s["second"] + 1.0 for s in seconds]
    over = [s.get("sampled_over_s") or 1.0 for s in seconds]
    return at, [a - o / 2 for a, o in zip(at, over, strict=True)]


def _server(plt: Any, doc: dict[str, Any], path: Path) -> None:
    seconds = doc["seconds"]
    x, mid = _sampled(seconds)
    sources: dict[str, str] = doc.get("metrics_kinds", {})
    gateways = [n for n, k in sources.items() if k == "gateway"]
    pods = [n for n, k in sources.items() if k == "pod"]
    replicas = any(v is not None for g in gateways for v in _metric(seconds, g, "replicas"))
    ratios = [3, 3, 3, 1.5] if replicas else [3, 3, 3]
    fig, axes = plt.subplots(
        len(ratios),
        1,
        figsize=(10, 0.8 * sum(ratios) + 0.6),
        sharex=True,
        gridspec_kw={"height_ratios": ratios},
    )
    queue, batch, cpu = axes[0], axes[1], axes[2]
    for g in gateways:
        queue.plot(x, _metric(seconds, g, "queue_requests"), marker=".", label=f"{g} queued")
        queue.plot(x, _metric(seconds, g, "inflight_requests"), marker=".", label=f"{g} in flight")
        batch.plot(mid, _metric(seconds, g, "mean_batch_rows"), marker=".", label=f"{g} batch rows")
    for p in pods:
        queue.plot(x, _metric(seconds, p, "pending_requests"), ".", label=f"{p} pending")
        batch.plot(mid, _metric(seconds, p, "mean_batch_rows"), ".", label=f"{p} batch rows")
    queue.set_ylabel("requests")
    queue.set_title("queue depth and in-flight (sampled each second)", fontsize="medium")
    batch.set_ylabel("rows per batch")
    batch.set_title("mean batch size over each second", fontsize="medium")
    names = sorted({n for s in seconds for n in (s.get("cpu_s") or {})})
    for name in names:
        cpu.plot(mid, [(s.get("cpu_s") or {}).get(name) for s in seconds], marker=".", label=name)
    cpu.set_ylabel("CPU (cores)")
    cpu.set_title("CPU of each process under test", fontsize="medium")
    if replicas:
        for g in gateways:
            axes[3].step(x, _metric(seconds, g, "replicas"), where="post", label=f"{g} ready pods")
        axes[3].set_ylabel("replicas")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize="small", ncol=3)
    axes[-1].set_xlabel("seconds")
    fig.suptitle(f"Trace {doc['trace']['name']}: the stack, per second")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the three plots of a trace report into ``out_dir``; their paths."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "latency.png", out_dir / "throughput.png", out_dir / "server.png"]
    _latency(plt, doc, paths[0])
    _throughput(plt, doc, paths[1])
    _server(plt, doc, paths[2])
    return paths
