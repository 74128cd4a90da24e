"""The backends: calls to the model pods."""
