"""Hypothesis profiles of the suite, chosen by ``HYPOTHESIS_PROFILE``.

- ``ci`` (the default, what CI runs): derandomized, :data:`CI_EXAMPLES` examples per
  test, so a run is reproducible and fits the CI budget;
- ``thorough``: random (a fresh seed every run), :data:`THOROUGH_EXAMPLES` examples per
  test; ``HYPOTHESIS_PROFILE=thorough python -m pytest -q`` (docs/developing.md).

Tests that are costly per example ask for fewer with ``@settings(max_examples=examples(n))``;
:func:`examples` scales ``n`` by the profile, so those tests run thousands too when thorough.
"""
import os
import pathlib

from hypothesis import HealthCheck, settings

#: examples per test in CI, and under ``thorough``.
CI_EXAMPLES, THOROUGH_EXAMPLES = 25, 2000
#: the profile of this run (``REFODE_HYPOTHESIS_PROFILE`` is the older name).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE",
                         os.environ.get("REFODE_HYPOTHESIS_PROFILE", "ci"))
#: the profiles that run :data:`CI_EXAMPLES` derandomized examples ("refode": older name).
CI_PROFILES = ("ci", "refode")
#: the profiles a run may ask for, as the error about an unknown one lists them.
PROFILES = ("ci", "thorough")
#: the repository root (the test of the profiles starts Python there).
ROOT = pathlib.Path(__file__).resolve().parents[1]

settings.register_profile("ci", deadline=None, max_examples=CI_EXAMPLES, derandomize=True,
                          print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=THOROUGH_EXAMPLES,
                          derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
# the name of the former single profile, kept for existing command lines
settings.register_profile("refode", parent=settings.get_profile("ci"))


def examples(n):
    """``n`` examples in CI, scaled by ``THOROUGH_EXAMPLES / CI_EXAMPLES`` otherwise."""
    return n if PROFILE in CI_PROFILES else n * THOROUGH_EXAMPLES // CI_EXAMPLES


def load():
    """Load the profile of this run (an unknown name is refused, listing the known)."""
    if PROFILE not in PROFILES + CI_PROFILES:
        raise SystemExit(f"HYPOTHESIS_PROFILE={PROFILE!r} is not a profile of the suite; "
                         f"use one of {', '.join(PROFILES)} (tests/profiles.py)")
    settings.load_profile(PROFILE)
