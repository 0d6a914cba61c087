"""pytest plugin ``refode`` (entry point ``pytest11``): check an implementation against refode.

Loaded automatically by pytest once refode is installed; disable it with ``-p no:refode``.
It is inert unless used: it imports nothing heavy (not refode, numba or h5py) until a test
asks for one of its fixtures, so it costs nothing in projects that ignore it (and cannot
change the environment that their conftest files set before numba is imported).

- ``pytest --refode-golden DIR`` parametrizes every test that takes the fixture
  ``refode_golden_case`` over the golden files ``DIR/**/*.h5`` (a
  :class:`refode.testing.GoldenCase` each); without the option such tests are skipped;
- ``refode_golden_factory(config, mode="train", seed=0, ...)`` writes the golden file of
  a configuration into a session temporary folder and returns its path.

The implementation lives in :mod:`refode.testing.plugin`; see ``docs/testing.md``.
"""
import pathlib

import pytest

#: the command-line option naming a folder of golden files (may be repeated).
OPTION = "--refode-golden"
#: the fixture that the option parametrizes.
CASE_FIXTURE = "refode_golden_case"
#: pattern of the golden files inside a folder (recursive).
PATTERN = "**/*.h5"


def pytest_addoption(parser):
    group = parser.getgroup("refode", "checking an implementation against refode")
    group.addoption(OPTION, action="append", default=[], metavar="DIR",
                    help="check the implementation against every golden file DIR/**/*.h5: "
                         f"tests taking the fixture `{CASE_FIXTURE}` run once per file "
                         "(repeatable; see refode's docs/testing.md)")


def golden_files(folders):
    """Sorted golden-file paths under the folders (``PATTERN``); a missing folder raises."""
    out = []
    for folder in folders:
        path = pathlib.Path(folder)
        if path.is_file():
            out.append(path)
            continue
        if not path.is_dir():
            raise pytest.UsageError(f"{OPTION} {folder}: no such folder; pass a folder of "
                                    "golden files (refode golden, refode.testing.write_golden)")
        out.extend(sorted(path.glob(PATTERN)))
    return out


def _case_id(path, folders):
    for folder in folders:
        try:
            return str(pathlib.Path(path).relative_to(folder).with_suffix(""))
        except ValueError:
            continue
    return pathlib.Path(path).stem


def pytest_configure(config):
    """Check the folders of ``--refode-golden`` up front (a usage error, exit code 4)."""
    folders = config.getoption(OPTION)
    if folders and not golden_files(folders):
        raise pytest.UsageError(f"{OPTION} {' '.join(folders)}: no *.h5 golden files there")


def pytest_report_header(config):
    folders = config.getoption(OPTION)
    if folders:
        return f"refode: golden files from {', '.join(folders)}"
    return None


def pytest_generate_tests(metafunc):
    if CASE_FIXTURE not in metafunc.fixturenames:
        return
    folders = metafunc.config.getoption(OPTION)
    if not folders:
        skip = pytest.mark.skip(reason=f"no golden files: pass {OPTION} DIR")
        metafunc.parametrize(CASE_FIXTURE, [pytest.param(None, marks=skip, id="no-golden")],
                             indirect=True)
        return
    files = golden_files(folders)
    metafunc.parametrize(CASE_FIXTURE, [str(p) for p in files], indirect=True,
                         ids=[_case_id(p, folders) for p in files])


@pytest.fixture
def refode_golden_case(request):
    """The golden case of this test's parameter: a :class:`refode.testing.GoldenCase`.

    Call ``refode_golden_case.check(result_or_function)`` to compare a result with it.
    """
    from refode.testing.plugin import load_case

    return load_case(request.param)


@pytest.fixture(scope="session")
def refode_golden_factory(tmp_path_factory):
    """``factory(config, mode="train", seed=0, batch=4, dtype="float64", model_seed=0,
    name=None) -> pathlib.Path``: write (once per session and arguments) the golden file
    of a configuration (a dict of model arguments, see ``refode.testing.build_model``)."""
    from refode.testing.plugin import GoldenFactory

    return GoldenFactory(tmp_path_factory.mktemp("refode-golden"))
