"""The shared validators name the argument and the fix."""
import numpy as np
import pytest

from refode import _validate
from refode.errors import RefodeError, ShapeError


def test_as_array_refuses_integers_and_names_the_fix():
    with pytest.raises(ShapeError, match=r"`h0` has dtype int64.*np.asarray\(h0, dtype=np.float64\)"):
        _validate.as_array(np.arange(3), "h0")


def test_as_array_refuses_non_finite():
    with pytest.raises(RefodeError, match=r"`c` contains 2 non-finite"):
        _validate.as_array(np.array([1.0, np.nan, np.inf]), "c")


def test_complex_only_where_allowed():
    z = np.ones(2, dtype=complex)
    with pytest.raises(ShapeError):
        _validate.as_array(z, "z")
    assert _validate.as_array(z, "z", allow_complex=True) is not None


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_positive_int(bad):
    with pytest.raises(RefodeError, match="`n_steps` must be an integer >= 1"):
        _validate.positive_int(bad, "n_steps")


@pytest.mark.parametrize("bad", [(1.0, 1.0), (2.0, 1.0), (0.0, np.inf), "ab", (1,)])
def test_interval(bad):
    with pytest.raises(RefodeError, match="`interval`"):
        _validate.interval(bad)


def test_leading_axis_message():
    with pytest.raises(ShapeError, match=r"shape \(3, 2\).*one entry per basis function.*\(4, \.\.\.\)"):
        _validate.leading(np.zeros((3, 2)), 4, "coefficients", "basis function")
