"""Shared set-up of the refode.testing tests: paths, and fast subprocess runs of pytest."""
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: the committed golden corpus and the example project.
CORPUS, EXAMPLE = ROOT / "data" / "golden", ROOT / "validation" / "example_project"
#: Numba's on-disk cache for the subprocesses (kept between sessions: keyed by source and
#: mtime, so it never goes stale; it saves the kernels' compilation in every subprocess).
NUMBA_CACHE = pathlib.Path(tempfile.gettempdir()) / "refode-tests-numba-cache"
#: seconds a subprocess run of pytest may take.
SUBPROCESS_TIMEOUT = 300


def run_pytest(cwd, *args, env=None):
    """Run ``python -m pytest -q -p no:cacheprovider ARGS`` in ``cwd``; returns (rc, output)."""
    full_env = {**os.environ, "REFODE_CACHE": "1", "NUMBA_CACHE_DIR": str(NUMBA_CACHE),
                **(env or {})}
    full_env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *map(str, args)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def corpus_files():
    """The committed golden files, sorted."""
    files = sorted(CORPUS.glob("*.h5"))
    assert files, f"no golden files in {CORPUS}"
    return files


@pytest.fixture(scope="session")
def net_golden():
    """A float64 ContinuousNet golden file of the corpus (train mode)."""
    return CORPUS / "net_pc2_rk4_n2_f64_train.h5"


class _Reports:
    """A pytest plugin object that records every test report of a nested session."""

    def __init__(self):
        self.reports = []

    def pytest_runtest_logreport(self, report):
        self.reports.append(report)

    def outcomes(self):
        """``{"passed": n, "failed": n, "skipped": n}`` (a test counts once)."""
        out = {"passed": 0, "failed": 0, "skipped": 0}
        for r in self.reports:
            if r.when == "call" or r.outcome != "passed":
                out[r.outcome] += 1
        return out

    def failures(self):
        """``{nodeid: failure text}`` of the failed tests."""
        return {r.nodeid: r.longreprtext for r in self.reports if r.outcome == "failed"}


@pytest.fixture
def run_inprocess(monkeypatch):
    """Run pytest on a project inside this process; returns ``(exit code, reports)``.

    Much cheaper than a subprocess (refode, its compiled kernels and torch are shared);
    the project's own modules (``conftest``, its tests, its implementation) are dropped
    from ``sys.modules`` afterwards so that the next run imports them afresh.
    """
    def run(project, *args, env=None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        before, path = set(sys.modules), list(sys.path)
        reports = _Reports()
        try:
            code = pytest.main(["-q", "-p", "no:cacheprovider", "-c",
                                str(project / "pyproject.toml"), "--rootdir", str(project),
                                *map(str, args), str(project / "tests")], plugins=[reports])
        finally:
            for name in set(sys.modules) - before:
                module = sys.modules[name]
                if str(project) in str(getattr(module, "__file__", "") or ""):
                    del sys.modules[name]
            sys.path[:] = path
        return int(code), reports
    return run
