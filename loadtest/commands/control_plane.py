"""``loadtest control-plane``: the Kubernetes API double and a kubelet running simulated pods."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import COUNT, NON_NEGATIVE, POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "control-plane",
        help="serve a local Kubernetes API whose Deployments run simulated pods",
    )
    p.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: free)")
    p.add_argument(
        "--kubeconfig-out",
        type=Path,
        default=Path(".run/kubeconfig"),
        help="where to write the kubeconfig (default .run/kubeconfig)",
    )
    p.add_argument("--namespace", default="models", help="the namespace (default models)")
    p.add_argument("--deployment", default="sim", help="the Deployment made (default sim)")
    p.add_argument("--replicas", type=COUNT, default=1, help="its replicas (default 1)")
    options.add_pod_options(p, fixed_ms=8.0, per_row_ms=0.25)
    p.add_argument("--devices", type=POSITIVE_INT, default=1, help="devices per pod (default 1)")
    p.add_argument(
        "--startup-s", type=NON_NEGATIVE, default=1.0, help="pod start-up delay (default 1)"
    )
    p.add_argument(
        "--grace-s", type=NON_NEGATIVE, default=10.0, help="SIGTERM grace period (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    from loadtest.control_plane.run import ControlPlaneConfig, run_control_plane

    return run_control_plane(options.config_from(args, ControlPlaneConfig))
