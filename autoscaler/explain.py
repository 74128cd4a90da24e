"""``autoscaler explain MODEL``: why a running autoscaler scaled as it did, from its /status.

Prints the model's replicas now and its last decisions that changed the count or reason, each
with its inputs: the demand in pods over the windows, the gateways' load, the pods, the learnt
start-up time. A model whose Deployment serves others too shows the Deployment's decisions,
each with every model's share of the demand. ``--json`` prints the decisions as JSON instead.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from typing import Any

import orjson

__all__ = ["describe", "explain_main"]


def _num(x: Any, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    return "?" if x is None else f"{x * scale:.{digits}f}{unit}"


def _inputs(fields: dict[str, Any]) -> str:
    obs = fields["observations"]
    load = obs.get("load")
    parts = [
        f"demand {_num(fields['stable_pods'])} stable, {_num(fields['panic_pods'])} panic pods"
    ]
    if fields.get("recommendation") is not None:
        parts.append(f"recommended {fields['recommendation']}")
    if fields.get("lost_pods"):
        parts.append(f"{fields['lost_pods']} lost")
    if load is None:
        parts.append("no live report")
    else:
        parts += [
            f"queued {load['queued_requests']} req / {load['queued_rows']} rows",
            f"in flight {load['inflight_rows']} rows",
            f"arrivals {_num(load['arrival_rows_per_s'], digits=1)} rows/s",
            f"shed {_num(load['rejected_requests_per_s'], digits=1)} req/s",
            f"cost F {_num(load['fixed_s'], ' ms', 1000)} + "
            f"c {_num(load['per_row_s'], ' ms', 1000)} per row",
            f"pods {load['ready_endpoints']} ready, {load['starting_endpoints']} starting, "
            f"{load['terminating_endpoints']} terminating",
            f"{load['reporters']} gateway(s)"
            + (f", {load['missing']} missing" if load["missing"] else ""),
        ]
    if fields.get("models"):
        shares = [
            f"{s['model']} {'silent' if s['pods'] is None else _num(s['pods'])}"
            for s in fields["models"]
        ]
        parts.append(f"from models {', '.join(shares)} pods (summed)")
    if obs.get("scale_up_waiting_s") is not None:
        parts.append(f"scale-up waiting {_num(obs['scale_up_waiting_s'], ' s', digits=1)}")
    return "; ".join(parts)


def describe(status: dict[str, Any], model: str, last: int) -> str:
    """The explanation of ``model`` from a /status document; ValueError if it has no such model."""
    models = {m["model"]: m for m in status.get("models", [])}
    if model not in models:
        known = ", ".join(sorted(models)) or "none"
        raise ValueError(f"the autoscaler scales no model {model!r} (it scales: {known})")
    m = models[model]
    startup = m["startup"]
    learnt = f"learnt from {len(startup['samples_s'])}" if startup["learnt"] else "the prior"
    lines = [
        f"model {model} ({m['namespace']}/{m['deployment']}, {m['actuation']}): "
        f"desired {m['desired']}, current {m['current']}, ready {m['ready']} "
        f"({m['reason']}{', panicking' if m['panicking'] else ''})",
        f"  pod start-up {_num(startup['estimate_s'], ' s', digits=1)} ({learnt}); "
        f"gateways {', '.join(m['gateways']) or 'none'}; "
        f"autoscaler {status['identity']}{' (leader)' if status['leader'] else ' (standby)'}"
        f"{' (dry run)' if status['dry_run'] else ''}",
    ]
    together = m.get("deployment_models") or [model]
    if len(together) > 1:
        lines.insert(
            1,
            f"  sized with {', '.join(x for x in together if x != model)} (one Deployment, "
            f"one decision); this model's demand {_num(m.get('demand_pods'))} pods",
        )
    decisions = m["decisions"][:last]
    if not decisions:
        lines.append("  no decision yet")
    for d in decisions:
        lines.append(
            f"  {_num(d.get('age_s'), ' s', digits=1)} ago: {d['current']} -> {d['desired']} "
            f"({d['reason']}{', panicking' if d['panicking'] else ''}): {_inputs(d)}"
        )
    return "\n".join(lines)


def _fetch(url: str, last: int, timeout_s: float) -> dict[str, Any]:
    with urllib.request.urlopen(
        f"{url.rstrip('/')}/status?decisions={last}", timeout=timeout_s
    ) as r:
        doc: dict[str, Any] = orjson.loads(r.read())
        return doc


def explain_main(argv: list[str]) -> int:
    """Run ``autoscaler explain``; the exit status (1: no such model or no answer)."""
    parser = argparse.ArgumentParser(prog="autoscaler explain", description=__doc__)
    parser.add_argument("model", help="the model's name, as in the autoscaler's config")
    parser.add_argument(
        "--url",
        default="http://127.0.0.1:8091",
        help="the autoscaler's metrics port (default http://127.0.0.1:8091)",
    )
    parser.add_argument("-n", "--last", type=int, default=10, help="decisions to show (10)")
    parser.add_argument("--json", action="store_true", help="print the decisions as JSON")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="HTTP timeout (5 s)")
    args = parser.parse_args(argv)
    if args.last < 1:
        parser.error("--last must be >= 1")
    try:
        status = _fetch(args.url, args.last, args.timeout_s)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"autoscaler explain: no status from {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        text = describe(status, args.model, args.last)
    except ValueError as exc:
        print(f"autoscaler explain: {exc}", file=sys.stderr)
        return 1
    if args.json:
        model = next(m for m in status["models"] if m["model"] == args.model)
        text = orjson.dumps(model["decisions"][: args.last], option=orjson.OPT_INDENT_2).decode()
    print(text)
    return 0
