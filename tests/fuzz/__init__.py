"""Property-based tests: every input to a codec, a front-end or a config loader gets an answer
or a clear error, never a crash, a hang or a 500."""
