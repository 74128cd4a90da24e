"""The autoscaler: aggregates the gateways' load reports and sizes each model's Deployment."""

__version__ = "0.1.0"  # as pyproject.toml says
