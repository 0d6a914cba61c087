"""The hypothesis profiles of tests/profiles.py: ``ci`` is derandomized, ``thorough`` not."""
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from . import profiles


def test_the_profile_in_effect_is_the_one_asked_for():
    current = settings()
    if profiles.PROFILE in profiles.CI_PROFILES:
        assert current.derandomize, "the ci profile must be derandomized (reproducible runs)"
        assert current.max_examples == profiles.CI_EXAMPLES
        assert profiles.examples(6) == 6
    else:
        assert profiles.PROFILE == "thorough" and not current.derandomize
        assert current.max_examples == profiles.THOROUGH_EXAMPLES
        assert profiles.examples(6) == 6 * profiles.THOROUGH_EXAMPLES // profiles.CI_EXAMPLES
    assert current.deadline is None


def test_ci_draws_the_same_examples_every_run():
    """Under ci a property test sees the same examples each time it runs."""
    if profiles.PROFILE not in profiles.CI_PROFILES:
        return  # thorough is random on purpose

    def draws():
        seen = []

        @settings(database=None)
        @given(st.floats(allow_nan=False), st.integers())
        def record(x, n):
            seen.append((x, n))

        record()
        return seen

    first = draws()
    assert len(first) >= 2 and first == draws()


def _profile_in_a_fresh_process(env_value):
    code = ("import os, sys; sys.path.insert(0, os.getcwd()); from tests import profiles; "
            "profiles.load(); from hypothesis import settings; s = settings(); "
            "print(profiles.PROFILE, s.derandomize, s.max_examples)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HYPOTHESIS_PROFILE", "REFODE_HYPOTHESIS_PROFILE")}
    if env_value:
        env["HYPOTHESIS_PROFILE"] = env_value
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=profiles.ROOT, env=env, check=False)
    return out


def test_the_environment_variable_chooses_the_profile():
    default = _profile_in_a_fresh_process(None)
    assert default.stdout.split() == ["ci", "True", str(profiles.CI_EXAMPLES)], default.stderr
    thorough = _profile_in_a_fresh_process("thorough")
    assert thorough.stdout.split() == ["thorough", "False", str(profiles.THOROUGH_EXAMPLES)]
    typo = _profile_in_a_fresh_process("thourough")
    assert typo.returncode != 0 and "HYPOTHESIS_PROFILE='thourough'" in typo.stderr
    assert "ci, thorough" in typo.stderr
