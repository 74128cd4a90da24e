"""A served model: its runtime (pods, scheduler, discovery) and its spec (tensors, config)."""
