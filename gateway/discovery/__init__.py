"""Kubernetes discovery: a model's pods from the EndpointSlices of its Service."""

from gateway.discovery.endpoints import Endpoint, routable, slice_endpoints
from gateway.discovery.store import EndpointSnapshot, SliceStore

__all__ = ["Endpoint", "EndpointSnapshot", "SliceStore", "routable", "slice_endpoints"]
