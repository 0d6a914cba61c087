"""The activations and their VJPs: definition vs Numba CPU vs CUDA (simulator), vs torch.

ReLU is compared bitwise (no arithmetic). GELU, ELU and tanh call transcendental
functions whose implementations differ between NumPy/SciPy (which may use SIMD
versions), libm (Numba CPU), refode's own vectorised ``exp``/``expm1`` (CPU ELU,
``tests/kernels/test_exp.py``) and CUDA: within 1e-12 (float64) / 1e-5 (float32).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refode.kernels import COMPILED, get

from ._checks import (
    FD_RTOL,
    FD_STEP,
    THREAD_COUNTS,
    assert_close,
    central_difference,
    fd_agrees,
    numba_threads,
)

DTYPES = (np.float64, np.float32)
ACTIVATIONS = ("relu", "gelu", "elu", "tanh")
#: activations whose backends must agree bitwise.
BITWISE = ("relu",)
#: activations whose CPU kernel is bitwise the definition.
CPU_BITWISE = ("relu",)
#: absolute floor of the elementwise derivative check (where f'(x) is nearly 0).
FD_ATOL = 1e-9
#: smallest |x| in the finite-difference test, far from ReLU's and ELU's kink at 0.
KINK_MARGIN = 0.05


def _run(backend, name, x, g):
    """``f(x)`` and ``f'(x) g``."""
    out, vjp = np.full_like(x, np.nan), np.full_like(x, np.nan)
    get(f"activation.{name}", backend)(x, out)
    get(f"activation.{name}_vjp", backend)(x, g, vjp)
    return out, vjp


def _compile_cpu():
    x = np.linspace(-1, 1, 4)
    for dtype in DTYPES:
        _run("cpu", "relu", x.astype(dtype), x.astype(dtype))


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    warmup("activation", _compile_cpu)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backends_agree_with_definition(backend, dtype, name, rng):
    x = (3 * rng.standard_normal((2, 3, 5))).astype(dtype)
    x[0, 0, :3] = (0, -0.0, np.nan)  # the kink and NaN propagation
    g = rng.standard_normal(x.shape).astype(dtype)
    expected = _run("reference", name, x, g)
    for a, e in zip(_run(backend, name, x, g), expected):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        if name in BITWISE or (backend == "cpu" and name in CPU_BITWISE):
            np.testing.assert_array_equal(a, e)
        else:
            assert_close(a[~np.isnan(e)], e[~np.isnan(e)])
    assert np.isnan(expected[0][0, 0, 2])  # NaN in, NaN out


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(size=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_activation_vjp_matches_finite_differences(name, size, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(size)
    x = np.sign(z) * (KINK_MARGIN + 2 * np.abs(z))
    v, w = rng.standard_normal(size), rng.standard_normal(size)
    forward = get(f"activation.{name}")

    def f(x):
        out = np.empty_like(x)
        forward(x, out)
        return out

    vjp = np.empty_like(x)
    get(f"activation.{name}_vjp")(x, w, vjp)
    # dot-product identity <J v, w> = <v, J^T w>, J v by central differences
    fd = central_difference(f, (x,), (v,))
    fd_2h = central_difference(f, (x,), (v,), step=2 * FD_STEP)
    scale = float(np.sum(np.abs(w) * (np.abs(x) + 1) * np.abs(v)))
    assert fd_agrees(float(np.vdot(fd, w)), float(np.vdot(fd_2h, w)), float(np.vdot(v, vjp)),
                     scale)
    # J is diagonal: the VJP with w = 1 is the derivative itself
    deriv = np.empty_like(x)
    get(f"activation.{name}_vjp")(x, np.ones_like(x), deriv)
    fd_deriv = central_difference(f, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(deriv, fd_deriv, rtol=FD_RTOL, atol=FD_ATOL)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_in_place_equals_out_of_place(backend, name, rng):
    # out is x (forward) or x / g (VJP): the CPU ELU writes its output before it reads
    # x again, so it must notice the overlap
    x = (3 * rng.standard_normal((3, 17))).astype(np.float64)
    g = rng.standard_normal(x.shape)
    expected = _run(backend, name, x, g)
    y = x.copy()
    get(f"activation.{name}", backend)(y, y)
    np.testing.assert_array_equal(y, expected[0])
    for target in ("x", "g"):
        xx, gg = x.copy(), g.copy()
        get(f"activation.{name}_vjp", backend)(xx, gg, xx if target == "x" else gg)
        np.testing.assert_array_equal(xx if target == "x" else gg, expected[1])


def test_activation_cpu_is_bitwise_identical_across_thread_counts(rng):
    x = rng.standard_normal((8, 1000))
    g = rng.standard_normal(x.shape)
    for name in ACTIVATIONS:
        results = []
        for n in THREAD_COUNTS:
            with numba_threads(n):
                results.append(_run("cpu", name, x, g))
        for a, e in zip(*results):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    fn = {"relu": torch.relu, "gelu": functional.gelu, "elu": functional.elu, "tanh": torch.tanh}
    x = 3 * rng.standard_normal((4, 50))
    x[0, :2] = (0.0, np.nan)
    g = rng.standard_normal(x.shape)
    tx = torch.tensor(x, requires_grad=True)
    y = fn[name](tx)
    (dx,) = torch.autograd.grad(y, (tx,), torch.tensor(g))
    out, vjp = _run("cpu", name, x, g)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(y.detach().numpy()))
    keep = ~np.isnan(x)
    assert_close(out[keep], y.detach().numpy()[keep])
    assert_close(vjp[keep], dx.numpy()[keep])
