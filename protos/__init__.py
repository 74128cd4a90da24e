"""Wire contracts shared by the gateway, the autoscaler and the load-test tools.

The KServe v2 inference service (``grpc_service.proto`` / ``model_config.proto``, package
``inference``), generated modules beside them, and the v2 tensor encodings (``tensors``).
"""
