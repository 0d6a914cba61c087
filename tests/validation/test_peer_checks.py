"""The peer checks of validation/ (quick subsets in CI; the full runs under ``peers``).

The model checks (check_torch, check_jax) run in this process, so that they share the
Numba kernels the suite has already compiled; the ODE-solver checks (check_torchdiffeq,
check_diffrax) run as scripts in a subprocess. Each skips cleanly when its peer library
is not installed. The full checks: ``REFODE_PEERS=1 python -m pytest -m peers -q
tests/validation/test_peer_checks.py``.
"""
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: script -> the libraries it needs.
NEEDS = {"check_torch": ("torch",), "check_jax": ("jax",),
         "check_torchdiffeq": ("torch", "torchdiffeq"), "check_diffrax": ("jax", "diffrax")}
IN_PROCESS = ("check_torch", "check_jax")
#: full runs only with this environment variable set (they take many minutes).
FULL = os.environ.get("REFODE_PEERS") == "1"


def _run(script, quick, capsys=None):
    for lib in NEEDS[script]:
        pytest.importorskip(lib)
    args = ["--quick"] if quick else []
    if script in IN_PROCESS and quick:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        module = importlib.import_module(f"validation.{script}")
        code = module.main(args)
        out = capsys.readouterr().out
        return code, out
    proc = subprocess.run([sys.executable, str(ROOT / "validation" / f"{script}.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=3600)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", sorted(NEEDS))
def test_quick_check_passes(script, capsys):
    code, out = _run(script, True, capsys)
    assert code == 0, out[-4000:]
    assert "FAIL" not in out
    assert "rows" in out  # the table's summary line was printed


@pytest.mark.peers
@pytest.mark.skipif(not FULL, reason="full peer checks: set REFODE_PEERS=1 (many minutes)")
@pytest.mark.parametrize("script", sorted(NEEDS))
def test_full_check_passes(script):
    code, out = _run(script, False)
    assert code == 0, out[-4000:]


def test_import_refode_imports_no_framework():
    code = ("import sys, refode, refode.interop, refode.interop.torch, refode.interop.jax; "
            "bad = [m for m in ('torch', 'jax', 'jaxlib', 'torchdiffeq', 'diffrax') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
