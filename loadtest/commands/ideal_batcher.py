"""``loadtest ideal-batcher``: an overhead-free batcher on a device of F + c·n, the yardstick."""

from __future__ import annotations

import argparse

from loadtest.argtypes import POSITIVE, POSITIVE_INT, number_list
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "ideal-batcher",
        help="simulate an overhead-free batcher (every waiting row the moment the device frees, no "
        "overhead) on a device of F + c·n: the yardstick at each load",
    )
    options.add_pod_options(p, fixed_ms=8.0, per_row_ms=0.25, max_batch=32)
    p.add_argument(
        "--limit",
        type=POSITIVE,
        default=None,
        help="rows/s the fractions are of (default: full batches back to back, max-batch / "
        "(F + c·max-batch))",
    )
    p.add_argument(
        "--fractions",
        type=number_list(float, strict=True),
        default=(0.5, 0.85, 0.9, 0.93, 0.95),
        help="offered loads, fractions of the limit (default 0.5,0.85,0.9,0.93,0.95)",
    )
    p.add_argument("--seconds", type=POSITIVE, default=300.0, help="simulated s per load")
    p.add_argument("--seeds", type=POSITIVE_INT, default=3, help="runs per load, averaged")


def run(args: argparse.Namespace) -> int:
    from statistics import fmean

    from loadtest.benches.ideal_batcher import ideal_batcher
    from loadtest.results.report import print_table

    full_ms = args.fixed_ms + args.per_row_ms * args.max_batch
    limit = args.limit or (args.max_batch * 1e3 / full_ms if full_ms > 0 else 0.0)
    if limit <= 0:
        raise SystemExit("loadtest ideal-batcher: a device of no cost has no limit: give --limit")
    rows = []
    for fraction in args.fractions:
        runs = [
            ideal_batcher(
                fraction * limit,
                args.fixed_ms,
                args.per_row_ms,
                args.max_batch,
                seconds=args.seconds,
                seed=seed,
            )
            for seed in range(args.seeds)
        ]
        rows.append(
            [
                f"{fraction:.3f}",
                f"{fraction * limit:,.0f}",
                f"{fmean(r.p50_ms for r in runs):.1f} ms",
                f"{fmean(r.p99_ms for r in runs):.1f} ms",
                f"{fmean(r.mean_batch for r in runs):.1f}",
            ]
        )
    title = (
        f"Overhead-free batcher: {args.fixed_ms:g} + {args.per_row_ms:g}·n ms, max "
        f"{args.max_batch}, limit {limit:,.0f} rows/s"
    )
    print_table(title, ["offered", "rows/s", "p50", "p99", "mean batch"], rows)
    return 0
