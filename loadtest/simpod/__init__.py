"""A simulated GPU model pod: a KServe v2 server whose batch of n rows takes F + c*n of device time."""
