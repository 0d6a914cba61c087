"""Checks shared by the tests of the hand-written VJPs (normalisation, attention, loss).

An op under test is described by two callables over a dict of named float64
inputs: ``forward(inputs) -> list of outputs`` (the NumPy reference, which also
accepts complex input) and ``vjp(inputs, cotangents) -> dict of gradients`` with
the same names as ``inputs``.
"""
import numba
import numpy as np

#: complex-step size: the derivative is exact to rounding for any tiny step.
COMPLEX_STEP = 1e-30
#: central finite-difference step for float64 inputs of size O(1).
FD_STEP = 1e-6
#: relative tolerance of the finite-difference gradients (norm-wise).
FD_RTOL = 1e-6
#: round-off of a central difference per unit magnitude (as tests/kernels/_checks.ROUNDOFF).
ROUNDOFF = 4 * np.finfo(np.float64).eps / FD_STEP
#: relative tolerance of the dot-product identity (complex-step JVP vs VJP).
DOT_RTOL = 1e-10
#: tolerances of backend comparisons per dtype (relative, and absolute times max |expected|).
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def _pairing(a, b):
    """``sum_i <a_i, b_i>`` over two lists of arrays (real part)."""
    return sum(float(np.vdot(np.ravel(x), np.ravel(y)).real) for x, y in zip(a, b))


def jvp(forward, inputs, directions):
    """``J v`` by the complex step: ``Im f(x + i h v) / h``."""
    perturbed = {k: inputs[k] + 1j * COMPLEX_STEP * directions[k] for k in inputs}
    return [np.asarray(o).imag / COMPLEX_STEP for o in forward(perturbed)]


def assert_dot_product_identity(forward, vjp, inputs, rng):
    """``<J v, w> = <v, J^T w>`` for random ``v``, ``w``, to ``DOT_RTOL``."""
    v = {k: rng.standard_normal(a.shape) for k, a in inputs.items()}
    outputs = forward(inputs)
    w = [rng.standard_normal(np.shape(o)) for o in outputs]
    lhs = _pairing(jvp(forward, inputs, v), w)
    grads = vjp(inputs, w)
    rhs = _pairing([v[k] for k in inputs], [grads[k] for k in inputs])
    scale = max(abs(lhs), abs(rhs), 1e-300)
    assert abs(lhs - rhs) <= DOT_RTOL * scale, (lhs, rhs)


def assert_finite_differences(forward, vjp, inputs, rng):
    """Every gradient entry vs central differences of ``<f(x), w>``, to ``FD_RTOL`` norm-wise."""
    w = [rng.standard_normal(np.shape(o)) for o in forward(inputs)]
    grads = vjp(inputs, w)
    for name, a in inputs.items():
        fd, fd_2h = np.empty(a.shape), np.empty(a.shape)
        for idx in np.ndindex(a.shape):
            for out, step in ((fd, FD_STEP), (fd_2h, 2 * FD_STEP)):
                up, down = dict(inputs), dict(inputs)
                up[name], down[name] = a.copy(), a.copy()
                up[name][idx] += step
                down[name][idx] -= step
                out[idx] = (_pairing(forward(up), w) - _pairing(forward(down), w)) / (2 * step)
        # allowance as tests/kernels/_checks.fd_agrees: FD_RTOL relative, twice the step-2h
        # estimate of the truncation error, and the round-off of each entry's difference of
        # two pairings computed at magnitude sum |w| (|f| + 1) (a wrong VJP still fails)
        err = np.linalg.norm(fd - grads[name])
        roundoff = ROUNDOFF * np.sqrt(a.size) * sum(
            float(np.sum(np.abs(wi) * (np.abs(fi) + 1))) for wi, fi in zip(w, forward(inputs)))
        allowed = FD_RTOL * np.linalg.norm(fd) + 2 * np.linalg.norm(fd - fd_2h) + roundoff
        assert err <= allowed, (name, err, np.linalg.norm(fd))


def assert_close(actual, expected, bitwise=False):
    """Equal (``bitwise``) or within ``TOLERANCE[dtype]`` relative and scaled absolute."""
    if bitwise:
        np.testing.assert_array_equal(actual, expected)
        return
    tol = TOLERANCE[np.asarray(expected).dtype]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def run_outputs(fn, args, templates):
    """Call ``fn(*args, *outs)`` with NaN-filled outputs shaped like ``templates``; return them."""
    outs = [None if t is None else np.full(np.shape(t), np.nan, dtype=np.asarray(t).dtype)
            for t in templates]
    fn(*args, *outs)
    return outs


def assert_thread_count_invariant(fn, args, templates):
    """Outputs of ``fn`` bitwise equal with 1 and 2 Numba threads."""
    if numba.config.NUMBA_NUM_THREADS < 2:  # pragma: no cover - single-core machine
        import pytest

        pytest.skip("needs at least 2 Numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_outputs(fn, args, templates)
        numba.set_num_threads(2)
        two = run_outputs(fn, args, templates)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        if a is not None:
            np.testing.assert_array_equal(a, b)
