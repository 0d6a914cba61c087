"""The pytest plugin: inert without its option, the documented example runs as written."""
import re
import shutil
import subprocess
import sys

import pytest

from refode.testing.plugin import GoldenFactory, load_case

from .conftest import CORPUS, EXAMPLE, ROOT, run_pytest

#: the corpus files the example project's runs use (two it implements, one it skips).
SUBSET = ("net_pc2_rk4_n2_f64_train", "net_pc7_euler_n7_f64_train",
          "tagger_fourier3_ssprk3_n2_f32")


@pytest.fixture(scope="module")
def golden_subset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden-subset")
    for name in SUBSET:
        shutil.copy(CORPUS / f"{name}.h5", folder)
    return folder


def _python_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def test_plugin_module_imports_nothing_heavy():
    code = ("import sys, refode_pytest; heavy = [m for m in ('refode', 'numba', 'h5py', "
            "'numpy') if m in sys.modules]; assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_inert_in_a_project_that_does_not_use_it(tmp_path):
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_plain():\n    assert 'refode' not in sys.modules\n"
        "    assert 'numba' not in sys.modules\n")
    rc, out = run_pytest(tmp_path, "test_plain.py")
    assert rc == 0, out
    # a wrong folder is a usage error (exit code 4) with a one-line message
    rc, out = run_pytest(tmp_path, "--refode-golden", tmp_path / "nowhere")
    assert rc == 4 and "--refode-golden" in out and "no such folder" in out, out
    rc, out = run_pytest(tmp_path, "--refode-golden", tmp_path)
    assert rc == 4 and "no *.h5 golden files" in out, out


def test_documented_example_runs(tmp_path, golden_subset):
    """docs/testing.md's conftest.py and test file, with the example's implementation."""
    blocks = _python_blocks((ROOT / "docs" / "testing.md").read_text())
    conftest, test_file, run_case = blocks[0], blocks[1], blocks[2]
    # the documentation shows the example project's files as they are
    assert conftest == (EXAMPLE / "conftest.py").read_text()
    assert test_file == (EXAMPLE / "tests" / "test_against_refode.py").read_text()
    assert run_case in (EXAMPLE / "tiny_odenet.py").read_text()
    (tmp_path / "tests").mkdir()
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "tests" / "test_against_refode.py").write_text(test_file)
    shutil.copy(EXAMPLE / "tiny_odenet.py", tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\naddopts = -ra\n")

    rc, out = run_pytest(tmp_path, "--refode-golden", golden_subset)
    assert rc == 0, out
    assert "2 passed, 1 skipped" in out, out


def test_factory_writes_once_per_arguments(tmp_path):
    factory = GoldenFactory(tmp_path)
    cfg = {"in_channels": 1, "n_classes": 2, "widths": [1], "n_basis": 1, "n_steps": 1}
    path = factory(cfg, mode="eval", batch=2)
    assert path.exists() and factory(cfg, mode="eval", batch=2) == path
    named = factory(cfg, mode="train", batch=2, name="mine")
    assert named.name == "mine.h5" and named != path
    case = load_case(path)
    assert case.mode == "eval" and case.x.shape[0] == 2 and load_case(path) is case
