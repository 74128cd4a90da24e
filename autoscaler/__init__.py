"""The autoscaler: aggregates the gateways' load reports and sizes each model's Deployment."""
