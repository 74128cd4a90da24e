"""Seeing each request: its id, its access-log line and its trace (``gateway.observe``)."""
