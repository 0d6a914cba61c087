"""Hypothesis profiles of the suite, chosen by ``HYPOTHESIS_PROFILE``.

- ``ci`` (the default, what CI runs): derandomized, :data:`CI_EXAMPLES` examples per
  test, so a run is reproducible and fits the CI budget;
- ``thorough``: random (a fresh seed every run), :data:`THOROUGH_EXAMPLES` examples per
  test; ``HYPOTHESIS_PROFILE=thorough python -m pytest -q`` (docs/developing.md).

Tests that are costly per example ask for fewer with ``@settings(max_examples=examples(n))``;
:func:`examples` scales ``n`` by the profile, so those tests run thousands too when thorough.
"""
import os

from hypothesis import HealthCheck, settings

#: examples per test in CI, and under ``thorough``.
CI_EXAMPLES, THOROUGH_EXAMPLES = 25, 2000
#: the profile of this run (``REFODE_HYPOTHESIS_PROFILE`` is the older name).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE",
                         os.environ.get("REFODE_HYPOTHESIS_PROFILE", "ci"))

settings.register_profile("ci", deadline=None, max_examples=CI_EXAMPLES, derandomize=True,
                          print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=THOROUGH_EXAMPLES,
                          derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
# the name of the former single profile, kept for existing command lines
settings.register_profile("refode", parent=settings.get_profile("ci"))


def examples(n):
    """``n`` examples in CI, scaled by ``THOROUGH_EXAMPLES / CI_EXAMPLES`` otherwise."""
    return n if PROFILE in ("ci", "refode") else n * THOROUGH_EXAMPLES // CI_EXAMPLES


def load():
    """Load the profile of this run."""
    settings.load_profile(PROFILE)
