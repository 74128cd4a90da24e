"""``loadtest autoscale``: the real loop on step, spike and square traces, policy by policy."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import POSITIVE, choice_list
from loadtest.commands import options

__all__ = ["add_parser", "run"]

_TRACES = ("step", "spike", "square")
_POLICIES = ("capacity", "concurrency")


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "autoscale",
        help="the real loop (control plane, autoscaler, gateway) on load traces: "
        "capacity vs concurrency (Knative-style) scaling, side by side",
        description="Each trace runs once per policy against a fresh loop on free loopback "
        "ports, from 1 pod, one run after the other; prints SLO-violation seconds, 429s, "
        "replica-seconds, ready-pod-seconds, scale changes and reaction times side by side, "
        "and writes a JSON report and a PNG per run.",
    )
    p.add_argument(
        "--traces",
        type=choice_list(_TRACES),
        default=_TRACES,
        help=f"comma-separated subset of {','.join(_TRACES)} (default all)",
    )
    p.add_argument(
        "--policies",
        type=choice_list(_POLICIES),
        default=_POLICIES,
        help=f"comma-separated subset of {','.join(_POLICIES)} (default both)",
    )
    options.add_option(p, "duration", default=60.0, help="seconds per trace (default {default})")
    p.add_argument("--base-rate", type=POSITIVE, default=80.0, help="req/s at base (default 80)")
    p.add_argument(
        "--peak-factor", type=POSITIVE, default=10.0, help="peak = base x this (default 10)"
    )
    options.add_options(p, "slo-ms", "processes", "seed", slo_ms=100.0)
    options.add_option(p, "json", default=None, help="JSON report (default <out>/autoscale.json)")
    p.add_argument(
        "--out", type=Path, default=Path("reports/autoscale"), help="output folder (plots, logs)"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quick", action="store_true", help="8 s traces at low rates (for tests)")


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.loop_autoscale import AutoscaleConfig, run_autoscale
    from loadtest.benches.loop_run import LoopRunConfig

    if args.processes < 1:
        print("--processes must be at least 1 here")
        return 2
    try:
        config = options.config_from(
            args,
            AutoscaleConfig,
            out_dir=args.out,
            plots=not args.no_plots,
            run=options.config_from(args, LoopRunConfig),
        )
    except ValueError as exc:
        print(exc)
        return 2
    run_autoscale(config)
    return 0
