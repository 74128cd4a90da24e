"""What stands in for the outside world: load generators, the simulated GPU pod, reports."""
