"""Process-wide switches of ``refode.config``: the OpenMP wait policy set at import."""
import os
import subprocess
import sys

import pytest

PROBE = "import os, refode; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("preset,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_sets_passive_wait_policy_unless_the_user_did(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == expected
