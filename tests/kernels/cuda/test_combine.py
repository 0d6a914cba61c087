"""``combine`` and the theta(t) assembly on CUDA: bitwise their definitions.

``combine`` sums its stored entries in order in float64, as the definition does;
``theta_assemble`` is ``refode.integrate.weights.theta_at_support``'s arithmetic in the
coefficients' dtype (weights rounded to it, ``acc = acc + w c`` in order), and
``theta_accumulate`` is the adjoint's ``_accumulate``. The simulator computes as NumPy
does, so the comparisons are exact.
"""
import numpy as np
import pytest

from refode.integrate.adjoint import _accumulate
from refode.integrate.weights import theta_at_support
from refode.kernels import get
from refode.kernels.cuda.combine import theta_accumulate, theta_assemble

from ._helpers import DTYPES, device_copies

pytestmark = pytest.mark.cuda

#: supports ``(indices, weights)``: empty, one-hot, and weights not exact in float32.
SUPPORTS = [((), ()), ((2,), (1.0,)), ((1, 2), (1 / 3, 2 / 3)), ((0, 2, 3), (0.1, -0.7, 1.6))]
#: coefficients (K, ...) of one weight: 13 elements span two blocks of 7 threads.
COEFFICIENTS = (4, 13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_combine_is_bitwise_the_definition(dtype, rng):
    indptr, indices = np.array([0, 2, 3, 3, 6]), np.array([0, 1, 1, 2, 0, 1])
    data = rng.standard_normal(6)
    src = rng.standard_normal((3, 5)).astype(dtype)
    out, want = np.full((4, 5), np.nan, dtype), np.full((4, 5), np.nan, dtype)
    get("combine", "cuda")(indptr, indices, data, src, out)
    get("combine", "reference")(indptr, indices, data, src, want)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("support", SUPPORTS, ids=["empty", "one-hot", "two", "three"])
def test_theta_assemble_is_bitwise_theta_at_support(support, dtype, rng):
    c = rng.standard_normal((COEFFICIENTS[0], 3, 5)).astype(dtype)
    out = np.full(c.shape[1:], np.nan, dtype)
    theta_assemble(c, *support, out)
    want = theta_at_support({"w": c}, support)["w"]
    assert want.dtype == dtype
    np.testing.assert_array_equal(out, want)


def test_theta_assemble_rounds_float32_weights_first(rng):
    # w * c in float32 with w rounded to float32 (NumPy's weak Python float), not in float64
    c = rng.standard_normal((2, 64)).astype(np.float32)
    out = np.empty(64, np.float32)
    theta_assemble(c, (0, 1), (1 / 3, 0.1), out)
    c64 = c.astype(np.float64)
    float64_then_rounded = (c64[0] / 3 + 0.1 * c64[1]).astype(np.float32)
    np.testing.assert_array_equal(out, np.float32(1 / 3) * c[0] + np.float32(0.1) * c[1])
    assert np.any(out != float64_then_rounded)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, -1.0, 0.25])
def test_theta_accumulate_is_bitwise_the_adjoints_accumulation(scale, dtype, rng):
    indices, weights = SUPPORTS[3]
    grads = rng.standard_normal(COEFFICIENTS).astype(dtype)
    thetabar = rng.standard_normal(COEFFICIENTS[1:]).astype(dtype)
    want = {"w": grads.copy()}
    _accumulate(want, (indices, weights), {"w": thetabar}, scale)
    theta_accumulate(grads, indices, weights, scale, thetabar)
    np.testing.assert_array_equal(grads, want["w"])


def test_theta_kernels_on_device_arrays_and_a_device_support_table(cuda, no_transfers, rng):
    c = rng.standard_normal(COEFFICIENTS)
    indices, weights = SUPPORTS[2]
    d_c, d_out, d_idx, d_w, d_grads = device_copies(cuda, [
        c, np.empty(COEFFICIENTS[1]), np.array(indices), np.array(weights), np.zeros_like(c)])
    with no_transfers():
        theta_assemble(d_c, d_idx, d_w, d_out)
        theta_accumulate(d_grads, d_idx, d_w, 1.0, d_out)
    want = theta_at_support({"w": c}, (indices, weights))["w"]
    np.testing.assert_array_equal(d_out.copy_to_host(), want)
    grads = {"w": np.zeros_like(c)}
    _accumulate(grads, (indices, weights), {"w": want}, 1.0)
    np.testing.assert_array_equal(d_grads.copy_to_host(), grads["w"])
