"""The local stack: simulated pods and the gateway as processes on loopback."""
