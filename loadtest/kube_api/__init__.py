"""A Kubernetes API server double (aiohttp on 127.0.0.1) that speaks the real wire protocol."""
