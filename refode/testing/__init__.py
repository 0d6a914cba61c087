"""Tools for testing other implementations of Stateful ODE-Nets against refode.

- assertions: :func:`assert_close_to_golden` (a per-array table of absolute and relative
  errors and the worst element's index on failure), :func:`assert_arrays_close`,
  :func:`compare_with_golden`, :func:`format_table`, :func:`flatten`;
- golden cases: :class:`GoldenCase` (a golden file as plain NumPy data),
  :func:`write_golden`, :func:`build_model`, :func:`expected_state`;
- :mod:`refode.testing.strategies`: hypothesis strategies (bases, coefficients, tableaus,
  step counts, model configurations, inputs, saved models). It needs ``hypothesis``, a
  test-time dependency (``pip install refode[testing]``); it is imported on first use, so
  ``import refode.testing`` works without it;
- :mod:`refode.testing.plugin`: the pytest plugin (``--refode-golden DIR`` and the
  ``refode_golden_case`` / ``refode_golden_factory`` fixtures), see ``docs/testing.md``.
"""
import importlib

from .assertions import (assert_arrays_close, assert_close_to_golden, compare_arrays,
                         compare_with_golden, flatten, format_table)
from .cases import GoldenCase, build_model, expected_state, family_of, write_golden

__all__ = ["assert_close_to_golden", "assert_arrays_close", "compare_with_golden",
           "compare_arrays", "format_table", "flatten", "GoldenCase", "write_golden",
           "build_model", "expected_state", "family_of", "strategies"]


def __getattr__(name):
    """Import :mod:`refode.testing.strategies` (and so hypothesis) on first use only."""
    if name == "strategies":
        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
