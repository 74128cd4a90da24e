"""The local control plane: the Kubernetes API double plus a kubelet that runs simulated pods."""
