"""A PNG per ``loadtest autoscale`` run (matplotlib, Agg: no display needed).

Three panels over the trace's seconds: spec.replicas and ready pods (as sampled), the offered
and served rates, and the p99 latency of each second with the SLO as a line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_run_plot"]


def write_run_plot(run: dict[str, Any], path: Path) -> Path:
    """Draw ``run`` (a ``loop_run.run_one`` report) into ``path``; the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = run["seconds"]
    xs = [s["second"] + 0.5 for s in seconds]
    samples = run["samples"]["rows"]
    fig, (ax_pods, ax_rate, ax_p99) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    at = [r[0] for r in samples]
    ax_pods.step(at, [r[1] for r in samples], where="post", label="spec.replicas")
    ax_pods.step(at, [r[2] for r in samples], where="post", label="ready pods")
    ax_pods.set_ylabel("pods")
    ax_pods.legend(loc="upper left")
    ax_pods.set_title(f"{run['trace']} trace, {run['policy']} policy")
    ax_rate.plot(xs, [s["offered"] for s in seconds], label="offered")
    ax_rate.plot(xs, [s["ok"] for s in seconds], label="served")
    ax_rate.plot(xs, [s["rejected_429"] for s in seconds], label="429s")
    ax_rate.set_ylabel("requests/s")
    ax_rate.legend(loc="upper left")
    p99 = [s["p99_ms"] for s in seconds]
    ax_p99.plot(xs, [float("nan") if v is None else v for v in p99], label="p99")
    ax_p99.axhline(run["figures"]["slo_ms"], color="red", linestyle="--", label="SLO")
    ax_p99.set_yscale("log")
    ax_p99.set_ylabel("ms")
    ax_p99.set_xlabel("s")
    ax_p99.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
