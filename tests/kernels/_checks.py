"""Checks shared by the tests of the dense, conv2d, activation and avgpool kernels."""
import contextlib

import numba
import numpy as np

#: relative tolerance between backends whose arithmetic order differs, per dtype.
BACKEND_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
#: step of the central finite differences (float64).
FD_STEP = 1e-6
#: relative tolerance of a VJP against central finite differences (float64).
FD_RTOL = 1e-6
#: relative tolerance of the dot-product identity where the JVP is exact (linear ops).
DOT_RTOL = 1e-12
#: the thread counts whose CPU results must be bitwise identical.
THREAD_COUNTS = (1, 2)


def assert_close(actual, expected, rtol=None):
    """``actual`` equals ``expected`` within ``rtol`` (by dtype: ``BACKEND_RTOL``), scaled.

    The absolute floor is ``rtol * max(1, max |expected|)`` so that entries that cancel
    to nearly 0 are judged against the size of the array, not against themselves.
    """
    rtol = BACKEND_RTOL[np.dtype(expected.dtype)] if rtol is None else rtol
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def relative_gap(a, b):
    """``|a - b| / max(|a|, |b|, tiny)`` for two scalars."""
    return abs(a - b) / max(abs(a), abs(b), np.finfo(np.float64).tiny)


def central_difference(f, primals, directions, step=FD_STEP):
    """``(f(p + h v) - f(p - h v)) / 2h``: the JVP of ``f`` at ``primals`` along ``directions``."""
    plus = f(*[p + step * v for p, v in zip(primals, directions)])
    minus = f(*[p - step * v for p, v in zip(primals, directions)])
    return (plus - minus) / (2 * step)


#: round-off of a central difference per unit of the magnitude its terms are computed at:
#: ``ROUNDOFF * scale`` with ``ROUNDOFF = 4 eps / h`` (the two evaluations, each rounded).
ROUNDOFF = 4 * np.finfo(np.float64).eps / FD_STEP


def fd_agrees(fd, fd_2h, exact, scale=0.0, rtol=FD_RTOL):
    """Whether a central difference ``fd`` (step h) matches ``exact``.

    The allowance is ``rtol |exact|``, plus twice the gap to the same difference with
    step 2h (the estimate of its truncation error, ``O(h^2)``), plus
    ``ROUNDOFF * scale``, the round-off of subtracting two function values computed at
    magnitude ``scale`` (e.g. ``sum |w| (|x| + 1) |v|``: GELU's ``1 + erf`` cancels far
    left, ``tanh`` saturates, and the two differences can round to the same multiple of
    an ulp). A wrong derivative still fails: it is off by far more than ``1e-9`` of the
    scale. Without these terms a tiny derivative fails on round-off alone, as the
    ``thorough`` hypothesis profile found.
    """
    allowed = rtol * abs(exact) + 2 * abs(fd - fd_2h) + ROUNDOFF * scale
    return abs(fd - exact) <= allowed


def vdot_all(xs, ys):
    """``sum_i <xs[i], ys[i]>`` over lists of arrays."""
    return sum(float(np.vdot(x, y)) for x, y in zip(xs, ys))


@contextlib.contextmanager
def numba_threads(n):
    """Run the body with ``numba.set_num_threads(n)``, restoring the previous count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
