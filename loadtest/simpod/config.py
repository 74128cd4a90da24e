"""The ``simpod`` command line, parsed into a ``PodConfig``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtest.simpod.core import Faults

__all__ = ["PodConfig", "parse_args"]


@dataclass(frozen=True, slots=True)
class PodConfig:
    """Everything one pod is started with."""

    host: str = "0.0.0.0"
    grpc_port: int = 9001
    http_port: int = 9000
    model_name: str = "sim"
    fixed_ms: float = 8.0
    per_row_ms: float = 0.25
    devices: int = 1
    max_batch: int = 32
    startup_s: float = 0.0
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    identity_models: bool = False
    log_level: str = "INFO"


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simpod",
        description="A simulated GPU model pod: KServe v2 over gRPC and HTTP; a batch of n rows "
        "takes F + c*n ms on one of D devices.",
    )
    d = PodConfig()
    p.add_argument("--host", default=d.host, help="address to listen on (default %(default)s)")
    p.add_argument("--grpc-port", type=int, default=d.grpc_port, help="default %(default)s")
    p.add_argument("--http-port", type=int, default=d.http_port, help="default %(default)s")
    p.add_argument("--model-name", default=d.model_name, help="demo model name (default sim)")
    p.add_argument(
        "--fixed-ms",
        type=_non_negative,
        default=d.fixed_ms,
        help="F: fixed device ms per batch (default %(default)s)",
    )
    p.add_argument(
        "--per-row-ms",
        type=_non_negative,
        default=d.per_row_ms,
        help="c: device ms per row (default %(default)s)",
    )
    p.add_argument(
        "--devices",
        type=_positive_int,
        default=d.devices,
        help="D: batches that run at once (default %(default)s)",
    )
    p.add_argument(
        "--max-batch",
        type=_positive_int,
        default=d.max_batch,
        help="B: max_batch_size of every model (default %(default)s)",
    )
    p.add_argument(
        "--startup-s",
        type=_non_negative,
        default=d.startup_s,
        help="seconds before the pod reports ready (default %(default)s)",
    )
    p.add_argument(
        "--error-rate",
        type=_rate,
        default=0.0,
        help="probability a batch fails with INTERNAL after running",
    )
    p.add_argument(
        "--stall-rate",
        type=_rate,
        default=0.0,
        help="probability a request never completes (until the client cancels)",
    )
    p.add_argument(
        "--crash-rate",
        type=_rate,
        default=0.0,
        help="probability a batch makes the process exit (os._exit) mid-batch",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for failure injection")
    p.add_argument(
        "--identity-models",
        action="store_true",
        help="also serve identity_<datatype> for every v2 datatype",
    )
    p.add_argument(
        "--log-level",
        default=d.log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        help="default %(default)s",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> PodConfig:
    """The command line ``argv`` (default: sys.argv[1:]) as a PodConfig."""
    ns = _parser().parse_args(argv)
    return PodConfig(
        host=ns.host,
        grpc_port=ns.grpc_port,
        http_port=ns.http_port,
        model_name=ns.model_name,
        fixed_ms=ns.fixed_ms,
        per_row_ms=ns.per_row_ms,
        devices=ns.devices,
        max_batch=ns.max_batch,
        startup_s=ns.startup_s,
        faults=Faults(ns.error_rate, ns.stall_rate, ns.crash_rate),
        seed=ns.seed,
        identity_models=ns.identity_models,
        log_level=ns.log_level,
    )
