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


@pytest.mark.parametrize("y, error, needle", [
    (np.array([0, 2, 3]), RefodeError, r"1 label\(s\) outside \[0, 3\) \(e.g. 3\)"),
    (np.array([0, 1.0, 2]), ShapeError, "has dtype float64"),
    (np.array([True, False, True]), ShapeError, "has dtype bool"),
    (np.array([[0, 1, 2]]), ShapeError, r"has shape \(1, 3\).*\(3,\)"),
    (np.array(["a", "b", "c"]), ShapeError, "has dtype <U1"),
    ([0, [1], 2], ShapeError, "not an array of integer class labels"),
    (np.array([0, 1, 254], np.uint8), RefodeError, r"\(e.g. 254\)"),
])
def test_labels_refuse_what_would_not_index_the_logits(y, error, needle):
    with pytest.raises(error, match=needle):
        _validate.labels(y, (3,), 3, "y")


def test_labels_accept_any_integer_dtype_and_the_ignore_index():
    for dtype in (np.int8, np.uint16, np.int32, np.uint64):
        out = _validate.labels(np.array([0, 2, 1], dtype), (3,), 3)
        assert out.dtype == np.int64 and out.tolist() == [0, 2, 1]
    assert _validate.labels([0, -100], (2,), 3, ignore=-100).tolist() == [0, -100]
    with pytest.raises(RefodeError, match="or -100"):
        _validate.labels(np.array([0, -100 + 2**16], np.uint16), (2,), 3, ignore=-100)


def test_complex_is_refused_without_advice_to_drop_the_imaginary_part():
    with pytest.raises(ShapeError, match=r"never drops an imaginary part") as info:
        _validate.as_array(np.ones(2, complex), "x")
    assert "np.asarray(x, dtype=np.float64)" not in str(info.value)
