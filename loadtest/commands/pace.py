"""``loadtest pace``: what a piece of Python and a bare grpc.aio call cost when they come alone."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from loadtest.argtypes import number_list
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "pace",
        help="CPU per call of fixed Python work and of a bare grpc.aio call, back to back and "
        "paced (the machine's floor under the gateway's low-load CPU)",
    )
    p.add_argument(
        "--paces",
        type=number_list(float, strict=False),
        default=(0.0, 1.0, 10.0),
        help="ms of sleep between calls (a,b,...; default 0,1,10)",
    )
    options.add_option(
        p,
        "duration",
        default=3.0,
        help="paced calls: duration / pace of them (default {default} s); back to back: a "
        "fixed count",
    )
    options.add_option(p, "json", default=Path("reports/bench-pace.json"))


def _call_count(pace_ms: float, duration_s: float, back_to_back: int) -> int:
    return back_to_back if pace_ms <= 0 else max(100, int(duration_s * 1e3 / pace_ms))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.pace import grpc_call, python_work
    from loadtest.results.report import print_table, write_json

    figures = []
    for pace_ms in args.paces:
        figures.append(python_work(pace_ms / 1e3, _call_count(pace_ms, args.duration, 3000)))
        figures.append(grpc_call(pace_ms / 1e3, _call_count(pace_ms, args.duration, 2000)))
    back_to_back = {f.what: f.cpu_us for f in figures if f.pace_ms == 0}
    rows = []
    for f in sorted(figures, key=lambda f: (f.what, f.pace_ms)):
        base = back_to_back.get(f.what)
        rows.append(
            [
                f.what,
                f"{f.pace_ms:g} ms",
                f"{f.calls:,}",
                f"{f.cpu_us:,.0f}",
                "-" if f.switches is None else f"{f.switches:.1f}",
                "-" if f.idle_cpu_us is None else f"{f.idle_cpu_us:,.0f}",
                f"{f.cpu_us / base:.2f}" if base else "-",
            ]
        )
    columns = ["what", "pace", "calls", "CPU-µs/call", "switches/call", "idle CPU-µs/call"]
    print_table("CPU per call, back to back and paced", [*columns, "vs back to back"], rows)
    write_json(args.json, {"paces_ms": args.paces, "figures": [asdict(f) for f in figures]})
    return 0
