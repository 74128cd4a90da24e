"""The ``loadtest`` command: ``stack`` (make run), ``bench`` (make bench), ``load`` (one run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from loadtest.commands import (
    ab,
    autoscale,
    autoscale_bench,
    bench,
    bench_all,
    ceiling,
    cold_starts,
    control_plane,
    discovery,
    goodput,
    ideal_batcher,
    load,
    pace,
    receiver_bench,
    soak,
    stack,
    tenants,
    trace,
)
from loadtest.commands.options import Subcommands

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


class Command(Protocol):
    """A sub-command: it adds its parser (under its name) and runs parsed arguments."""

    def add_parser(self, sub: Subcommands) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Every sub-command, by its name on the command line, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {
    "stack": stack,
    "bench": bench,
    "autoscale-bench": autoscale_bench,
    "autoscale": autoscale,
    "control-plane": control_plane,
    "discovery": discovery,
    "goodput": goodput,
    "ideal-batcher": ideal_batcher,
    "cold-starts": cold_starts,
    "trace": trace,
    "ab": ab,
    "tenants": tenants,
    "ceiling": ceiling,
    "pace": pace,
    "soak": soak,
    "receiver-bench": receiver_bench,
    "bench-all": bench_all,
    "load": load,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
