"""The options the ``loadtest`` sub-commands share, declared once, and configs built from them."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from loadtest.argtypes import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    choice_list,
    name_pid,
    number_list,
)
from loadtest.clients.base import CLIENT_KINDS, STANDARD_KINDS

__all__ = [
    "Subcommands",
    "add_load_options",
    "add_option",
    "add_options",
    "add_pod_options",
    "add_sweep_options",
    "config_from",
]

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Config = TypeVar("Config")

# By option name: its add_argument keywords; "{default}" in a help is the default as given.
_OPTIONS: dict[str, dict[str, Any]] = {
    "concurrency": {
        "type": POSITIVE_INT,
        "default": 16,
        "help": "concurrent requests per generator process (default {default})",
    },
    "rows": {"type": POSITIVE_INT, "default": 1, "help": "rows per request (default {default})"},
    "duration": {"type": POSITIVE, "help": "measured seconds per run (default {default})"},
    "warmup": {
        "type": NON_NEGATIVE,
        "default": 1.0,
        "help": "warm-up seconds before each measurement (default {default})",
    },
    "processes": {
        "type": COUNT,
        "default": 1,
        "help": "generator processes; 0 runs the load in this process (default {default})",
    },
    "verify-every": {
        "type": COUNT,
        "default": 16,
        "help": "check one answer in N (default {default}; 0 never)",
    },
    "protocol": {"choices": CLIENT_KINDS, "default": "http-json"},
    "protocols": {
        "type": choice_list(CLIENT_KINDS),
        "default": STANDARD_KINDS,
        "help": f"comma-separated subset of {','.join(CLIENT_KINDS)}",
    },
    "timeout": {"type": POSITIVE, "help": "per-request timeout s (default {default})"},
    "slo-ms": {"type": POSITIVE, "default": 50.0, "help": "latency SLO, ms (default {default})"},
    "seed": {"type": int, "default": 1, "help": "arrival seed (default {default})"},
    "pid": {
        "type": name_pid,
        "action": "append",
        "default": [],
        "help": "with --target: NAME=PID for CPU",
    },
    "pods": {"type": POSITIVE_INT, "default": 2, "help": "simulated pods (default {default})"},
    "gateways": {
        "type": number_list(int, 1, strict=False),
        "default": (1,),
        "help": "gateway replicas in front of the same pods, the load spread evenly over them; "
        "a list a,b,… measures each count in turn (default 1)",
    },
    "fixed-ms": {"type": NON_NEGATIVE, "help": "pod F: device ms per batch (default {default})"},
    "per-row-ms": {"type": NON_NEGATIVE, "help": "pod c: device ms per row (default {default})"},
    "max-batch": {
        "type": POSITIVE_INT,
        "default": 32,
        "help": "pod max batch size (default {default})",
    },
    "max-queue-delay-us": {
        "type": COUNT,
        "default": 5000,
        "help": "the gateway's max_queue_delay when it batches (default {default})",
    },
    "backend-protocol": {
        "choices": ("grpc", "http"),  # as loadtest.benches.goodput's (heavy: not imported here)
        "default": "grpc",
        "help": "the gateway's batches to the pods: over gRPC, or their REST API with binary "
        "tensors (default {default})",
    },
    "json": {"type": Path, "help": "JSON report path (default {default})"},
}

# Config fields whose option has a shorter name.
_SHORT = {
    "duration_s": "duration",
    "warmup_s": "warmup",
    "timeout_s": "timeout",
    "json_path": "json",
}


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_option(
    parser: argparse.ArgumentParser, name: str, *, flag: str | None = None, **overrides: Any
) -> None:
    """Add the shared option ``name`` (as ``--flag``, default ``--name``), with ``overrides``
    of its keywords (``default``, ``help``, ``type`` ...)."""
    spec = {**_OPTIONS[name], **overrides}
    if spec.get("help"):
        spec["help"] = spec["help"].format(default=_shown(spec.get("default")))
    parser.add_argument(f"--{flag or name}", **spec)


def add_options(parser: argparse.ArgumentParser, *names: str, **defaults: Any) -> None:
    """Add the shared options ``names``; ``defaults``, by option dest, override theirs."""
    for name in names:
        dest = name.replace("-", "_")
        add_option(parser, name, **({"default": defaults[dest]} if dest in defaults else {}))


def add_load_options(parser: argparse.ArgumentParser, *, duration: float = 5.0) -> None:
    """A closed-loop load's options: concurrency, rows, duration, warm-up, processes, checks."""
    names = ("concurrency", "rows", "duration", "warmup", "processes", "verify-every")
    add_options(parser, *names, duration=duration)


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    """An open-loop run's options against a stack: the protocol (http-binary by default),
    rows, the SLO, warm-up, the per-request timeout (2 s) and the arrival seed."""
    add_option(
        parser,
        "protocol",
        default="http-binary",
        help="default http-binary (the generator's cheapest; see README)",
    )
    add_options(parser, "rows", "slo-ms", "warmup", "timeout", "seed", timeout=2.0)


def add_pod_options(
    parser: argparse.ArgumentParser,
    *,
    fixed_ms: float,
    per_row_ms: float,
    max_batch: int = 32,
    cost_prefix: str = "",
) -> None:
    """The simulated pods' options: ``--fixed-ms`` (F), ``--per-row-ms`` (c), ``--max-batch``;
    ``cost_prefix`` goes before the first two (``pod-``: ``--pod-fixed-ms``)."""
    add_option(parser, "fixed-ms", flag=f"{cost_prefix}fixed-ms", default=fixed_ms)
    add_option(parser, "per-row-ms", flag=f"{cost_prefix}per-row-ms", default=per_row_ms)
    add_option(parser, "max-batch", default=max_batch)


def config_from(args: argparse.Namespace, cls: type[Config], **values: Any) -> Config:
    """A ``cls`` dataclass from the parsed ``args``: each field from the option of its name
    (``duration_s`` from ``--duration``, ``json_path`` from ``--json`` ...) unless ``values``
    gives it; a field with neither keeps its default."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        option = _SHORT.get(f.name, f.name)
        if f.name in values:
            kwargs[f.name] = values[f.name]
        elif hasattr(args, option):
            kwargs[f.name] = getattr(args, option)
    return cls(**kwargs)
