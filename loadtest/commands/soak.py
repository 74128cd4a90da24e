"""``loadtest soak``: minutes of mixed load at a fraction of the pods' limit; RSS, open fds and
event-loop tasks per interval, with their slopes; nothing admitted may be lost."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import NON_NEGATIVE, POSITIVE, POSITIVE_INT
from loadtest.clients.base import CLIENT_KINDS
from loadtest.commands import options

__all__ = ["add_parser", "parse_mix", "run"]

_DESCRIPTION = (
    "Open-loop Poisson load at --fraction of the pods' physical limit for --duration-s, mixing "
    "the protocols in --mix shares with --bad-share bad requests (an unknown input, a wrong "
    "datatype, a malformed JSON body: each must get 400 / INVALID_ARGUMENT) and "
    "--disconnect-share clients that leave mid-request. Every --interval-s it prints each "
    "process's RSS, open fds and (the gateway) event-loop tasks; at the end the slope of each "
    "and whether it is flat, the requests per interval and per lane, and a JSON report. By "
    "default against a stack of its own (--pods simulated pods behind a gateway); --target "
    "http://HOST:PORT --grpc-target HOST:PORT --limit ROWS_S a running one (--metrics its "
    "gateway's metrics URL, --pid NAME=PID its processes). Exits 1 when a good request was "
    "lost or failed, a bad one answered otherwise, a process exited or a figure grew."
)


def parse_mix(text: str) -> dict[str, float]:
    """``KIND=WEIGHT,...`` (kinds of ``CLIENT_KINDS``, weights >= 0, not all 0)."""
    mix: dict[str, float] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        kind, sep, weight = item.partition("=")
        if not sep or kind.strip() not in CLIENT_KINDS:
            raise argparse.ArgumentTypeError(
                f"expected KIND=WEIGHT with KIND one of {','.join(CLIENT_KINDS)}, got {item!r}"
            )
        try:
            value = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a weight: {weight!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"weights must be >= 0, got {item!r}")
        mix[kind.strip()] = value
    if not mix or not sum(mix.values()) > 0:
        raise argparse.ArgumentTypeError(f"expected KIND=WEIGHT,... not all 0, got {text!r}")
    return mix


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "soak",
        help="minutes of mixed load: RSS, fds and tasks per interval with their slopes",
        description=_DESCRIPTION,
    )
    options.add_option(
        p, "duration", flag="duration-s", default=300.0, help="measured s (default {default})"
    )
    p.add_argument(
        "--interval-s", type=POSITIVE, default=60.0, help="a report every N s (default 60)"
    )
    p.add_argument(
        "--fraction", type=POSITIVE, default=0.8, help="of the pods' limit (default 0.8)"
    )
    p.add_argument(
        "--mix",
        type=parse_mix,
        default=dict.fromkeys(CLIENT_KINDS, 1.0),
        help="good load's protocol shares, KIND=WEIGHT,... (default all four equal)",
    )
    p.add_argument(
        "--bad-share", type=NON_NEGATIVE, default=0.02, help="bad requests (default 0.02)"
    )
    p.add_argument(
        "--disconnect-share",
        type=NON_NEGATIVE,
        default=0.02,
        help="clients that leave mid-request (default 0.02)",
    )
    p.add_argument(
        "--sample-s", type=POSITIVE, default=1.0, help="read the processes every N s (default 1)"
    )
    options.add_options(p, "warmup", "timeout", "seed", "verify-every", warmup=10.0, timeout=10.0)
    options.add_option(
        p,
        "processes",
        type=POSITIVE_INT,
        default=None,
        help="generator processes (default: one per 1,000 req/s)",
    )
    options.add_options(p, "pods", "max-queue-delay-us")
    options.add_pod_options(p, fixed_ms=20.0, per_row_ms=2.0, max_batch=16)
    p.add_argument("--target", help="a running server's HTTP base URL (http://HOST:PORT)")
    p.add_argument("--grpc-target", help="with --target: its gRPC HOST:PORT")
    p.add_argument("--limit", type=POSITIVE, help="with --target: the rows/s the fraction is of")
    p.add_argument("--metrics", help="with --target: the gateway's metrics URL (its task count)")
    options.add_options(p, "pid")
    options.add_option(p, "json", default=Path("reports/soak.json"))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.soak import SoakConfig, run_soak

    if args.target is None and (args.grpc_target or args.limit or args.metrics or args.pid):
        raise SystemExit(
            "loadtest soak: --grpc-target, --limit, --metrics and --pid go with --target"
        )
    if args.target is not None and args.limit is None:
        raise SystemExit("loadtest soak: --target needs --limit (the rows/s it serves at most)")
    try:
        config = options.config_from(
            args,
            SoakConfig,
            duration_s=args.duration_s,
            protocols=args.mix,
            target_limit_rows_s=args.limit,
            target_metrics=args.metrics,
            target_pids=tuple(args.pid),
        )
    except ValueError as exc:
        raise SystemExit(f"loadtest soak: {exc}") from None
    return 0 if run_soak(config).passed else 1
