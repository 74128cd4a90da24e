"""The front-ends: the HTTP/1.1 server, the v2 REST handlers and the v2 gRPC service."""
