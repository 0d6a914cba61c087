"""``positions``: fixed sinusoidal encodings.

The CPU kernel and the CUDA simulator call the same libm ``pow``/``sin``/``cos`` as
NumPy and agree bitwise; a real GPU uses its own math library and is held to
1e-12 (float64) / 1e-5 (float32) instead.
"""
import math
import os

import numpy as np
import pytest

from refode.kernels import COMPILED, get

from .vjp_checks import assert_close, assert_thread_count_invariant, run_outputs

#: (L, D) per backend, odd widths included: the CUDA simulator runs every thread in Python.
SHAPES = {"cpu": [(50, 16), (9, 7)], "cuda": [(4, 6), (3, 5)]}


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            get("positions", "cpu")(np.empty((2, 2), dtype))

    warmup("positions", compile_all)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backends_agree_with_definition(backend, dtype):
    bitwise = backend == "cpu" or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    for shape in SHAPES[backend]:
        template = [np.empty(shape, dtype)]
        expected = run_outputs(get("positions", "reference"), (), template)[0]
        actual = run_outputs(get("positions", backend), (), template)[0]
        assert_close(actual, expected, bitwise=bitwise)


def test_definition_is_sin_on_even_and_cos_on_odd_columns():
    length, width = 12, 10
    out = np.empty((length, width))
    get("positions", "reference")(out)
    for p in range(length):
        for i in range(0, width, 2):
            angle = p / 10000.0 ** (i / width)
            assert out[p, i] == pytest.approx(math.sin(angle), abs=1e-15)
            assert out[p, i + 1] == pytest.approx(math.cos(angle), abs=1e-15)
    np.testing.assert_array_equal(out[0, 0::2], 0.0)
    np.testing.assert_array_equal(out[0, 1::2], 1.0)


def test_cpu_is_bitwise_independent_of_thread_count():
    assert_thread_count_invariant(get("positions", "cpu"), (), [np.empty((257, 64))])
