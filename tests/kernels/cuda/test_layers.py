"""Dense and conv2d on CUDA (their products on the tiled GEMM) against their definitions.

Dense products are ``x @ w.T`` in the input dtype in the definition, as on the GEMM;
conv2d's im2col GEMMs (forward, ``dw`` and the column cotangents) span several tiles of
side 4 with ragged edges.
"""
import numpy as np
import pytest


from ._helpers import (DTYPES, assert_device_run_matches_host_run, assert_matches_definition, both)

pytestmark = pytest.mark.cuda


def _cases(rng, dtype):
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, w, g = r(9, 13), r(7, 13), r(9, 7)
    xc, wc, gc = r(2, 3, 5, 6), r(5, 3, 3, 3), r(2, 5, 3, 3)  # stride 2, pad 1: 3 x 3 outputs
    return {
        "dense": ((x, w, r(7)), [g]),
        "dense.dense_vjp": ((x, w, g), [x, w, np.empty(7, dtype)]),
        "conv2d": ((xc, wc, 2, 1), [gc]),
        "conv2d.conv2d_vjp": ((xc, wc, gc, 2, 1), [xc, wc]),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["dense", "dense.dense_vjp", "conv2d", "conv2d.conv2d_vjp"])
def test_layers_match_their_definitions(kernel, dtype, rng):
    assert_matches_definition(kernel, *_cases(rng, dtype)[kernel], dtype)


def test_dense_bias_cotangent_is_bitwise_the_definitions_row_order(rng):
    args, templates = _cases(rng, np.float32)["dense.dense_vjp"]
    actual, expected = both("dense.dense_vjp", args, templates)
    np.testing.assert_array_equal(actual[2], expected[2])


@pytest.mark.parametrize("kernel", ["dense.dense_vjp", "conv2d.conv2d_vjp"])
def test_layers_on_device_arrays(kernel, cuda, no_transfers, rng):
    args, templates = _cases(rng, np.float64)[kernel]
    assert_device_run_matches_host_run(cuda, no_transfers, kernel, args, templates)
