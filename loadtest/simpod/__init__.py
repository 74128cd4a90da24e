"""A simulated GPU model pod: a KServe v2 server where a batch of n rows takes F + c*n device ms.

Run it with the ``simpod`` console script (``loadtest.simpod.main:main``).
"""
