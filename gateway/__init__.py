"""The inference gateway: v2 front-ends, batching scheduler, routing and pod backends."""
