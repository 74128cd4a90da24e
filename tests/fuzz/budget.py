"""How many examples each fuzz test runs: a derandomized minute in ``make test``, far more with
``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``: random, each test's count times ``FUZZ_SCALE``).

The profiles are read here, not loaded globally, so the other hypothesis tests in the suite
keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILE", "fuzz"]

FUZZ_SCALE = 50
_QUIET = (HealthCheck.too_slow, HealthCheck.data_too_large)

settings.register_profile(
    "fuzz-ci", derandomize=True, deadline=None, database=None, suppress_health_check=_QUIET
)
settings.register_profile(  # a failure prints the blob that @reproduce_failure replays
    "fuzz",
    derandomize=False,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
PROFILE = "fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "fuzz-ci"


def fuzz(examples: int) -> settings:
    """Settings for a test that runs ``examples`` examples in ``make test`` (derandomized, no
    deadline), ``FUZZ_SCALE`` times as many in ``make fuzz``."""
    scale = FUZZ_SCALE if PROFILE == "fuzz" else 1
    return settings(settings.get_profile(PROFILE), max_examples=examples * scale)
