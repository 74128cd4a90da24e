"""The router stage: the pod set, the pick, outlier detection, the retry budget, call policy."""
