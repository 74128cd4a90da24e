"""Load traces: rate shapes, the trace run, its monitor, report and plots."""
