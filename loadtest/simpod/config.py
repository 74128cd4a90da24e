"""The ``simpod`` command line, parsed into a ``PodConfig``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from loadtest.argtypes import NON_NEGATIVE, POSITIVE_INT
from loadtest.simpod.core import Faults

__all__ = ["PodConfig", "parse_args"]


@dataclass(frozen=True, slots=True)
class PodConfig:
    """Everything one pod is started with."""

    host: str = "0.0.0.0"
    grpc_port: int = 9001
    http_port: int = 9000
    model_name: str = "sim"
    fixed_ms: float = 8.0  # F: device ms per batch
    per_row_ms: float = 0.25  # c: device ms per row
    devices: int = 1  # each runs one batch at a time
    max_batch: int = 32
    startup_s: float = 0.0  # before it is ready
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    identity_models: bool = False
    decoupled_models: bool = False  # also the decoupled model ``repeat`` (simpod.decoupled)
    row_size: int = 16  # INPUT0 values per row of the demo model
    no_signature: bool = False  # the demo model describes no inputs/outputs, has no config
    log_level: str = "INFO"
    tls_cert: str | None = None  # with tls_key: both ports serve TLS with this PEM pair
    tls_key: str | None = None


def _probability(text: str) -> float:
    value = float(NON_NEGATIVE(text))
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


# The device and its timing: flag, type, PodConfig field, help.
_DEVICE = (
    ("--fixed-ms", NON_NEGATIVE, "fixed_ms", "F: fixed device ms per batch"),
    ("--per-row-ms", NON_NEGATIVE, "per_row_ms", "c: device ms per row"),
    ("--devices", POSITIVE_INT, "devices", "D: batches that run at once"),
    ("--max-batch", POSITIVE_INT, "max_batch", "B: max_batch_size of every model"),
    ("--startup-s", NON_NEGATIVE, "startup_s", "seconds before the pod reports ready"),
)
_FAULTS = (
    ("error", "probability a batch fails with INTERNAL after running"),
    ("stall", "probability a request never completes (until the client cancels)"),
    ("crash", "probability a batch makes the process exit (os._exit) mid-batch"),
)


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
    p.add_argument(
        "--model-name",
        default=d.model_name,
        help="demo model name (default sim); a,b serves several alike, on the same devices",
    )
    for flag, kind, name, what in _DEVICE:
        p.add_argument(
            flag, type=kind, default=getattr(d, name), help=f"{what} (default %(default)s)"
        )
    for fault, what in _FAULTS:
        p.add_argument(f"--{fault}-rate", type=_probability, default=0.0, help=what)
    p.add_argument("--seed", type=int, default=None, help="seed for failure injection")
    p.add_argument(
        "--identity-models",
        action="store_true",
        help="also serve identity_<datatype> for every v2 datatype",
    )
    p.add_argument(
        "--decoupled-models",
        action="store_true",
        help="also serve the decoupled model repeat (INT32 n: n responses on ModelStreamInfer)",
    )
    p.add_argument(
        "--row-size",
        type=POSITIVE_INT,
        default=d.row_size,
        help="INPUT0/OUTPUT0 values per row of the demo model (default %(default)s)",
    )
    p.add_argument(
        "--no-signature",
        action="store_true",
        help="the demo model's metadata declares no inputs/outputs and it has no ModelConfig "
        "(NOT_FOUND), as MLServer's default; it doubles any FP32 INPUT0 it gets",
    )
    p.add_argument("--tls-cert", help="PEM certificate chain: TLS on both ports (with --tls-key)")
    p.add_argument("--tls-key", help="the PEM private key of --tls-cert")
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
    parser = _parser()
    ns = parser.parse_args(argv)
    if (ns.tls_cert is None) != (ns.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    names = ns.model_name.split(",")
    if "" in names or len(set(names)) < len(names):
        parser.error(f"--model-name: names must be distinct and non-empty, got {ns.model_name!r}")
    faults = Faults(*(getattr(ns, f"{fault}_rate") for fault, _ in _FAULTS))
    values = {f.name: getattr(ns, f.name) for f in fields(PodConfig) if f.name != "faults"}
    return PodConfig(**values, faults=faults)
