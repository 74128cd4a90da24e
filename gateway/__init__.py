"""The inference gateway: v2 front-ends, batching scheduler, routing and pod backends."""

__version__ = "0.1.0"  # as pyproject.toml says
