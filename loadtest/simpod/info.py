"""What the pod says about itself: server name, version and v2 extensions."""

from __future__ import annotations

from importlib import metadata

__all__ = ["EXTENSIONS", "SERVER_NAME", "server_version"]

SERVER_NAME = "simpod"
EXTENSIONS = ["binary_tensor_data", "parameters", "statistics", "model_configuration"]


def server_version() -> str:
    """The installed project's version."""
    try:
        return metadata.version("inference-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"
