"""The block reductions (batch norm, layer norm, cross-entropy) against their NumPy definitions.

Shapes give every reduced row, column or channel more elements than the 7 threads of a
block (``tests/conftest.py``), and more rows than blocks of a wave. The definitions sum
in float64 (``_work``), so do the kernels: float32 results are the float64 results
rounded, within 1e-5 of the definition's.
"""
import numpy as np
import pytest
from numba import float64

from refode import config
from refode.kernels import get
from refode.kernels.cuda import _reduce, launch_blocks
from refode.kernels.cuda._reduce import tree_sum

from .._checks import assert_close
from ..vjp_checks import run_outputs
from ._helpers import (DTYPES, assert_device_run_matches_host_run, assert_matches_definition, both)

pytestmark = pytest.mark.cuda


def _cases(rng, dtype):
    """``kernel -> (args, output templates)`` for every reduction kernel."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x4, dy4 = r(3, 2, 3, 5), r(3, 2, 3, 5)      # 45 elements a channel
    c = x4.shape[1]
    gamma, beta, mean, var = r(c), r(c), r(c), (rng.random(c) + 0.5).astype(dtype)
    x3, g3 = r(3, 3, 17), r(3, 3, 17)            # 9 rows of 17
    z = r(11, 9)
    t = np.array([1, 0, -100, 2, 8, 3, 0, 1, -100, 5, 4])
    per_c = [np.empty(c, dtype)] * 4
    return {
        "batchnorm": ((x4, gamma, beta), [x4] + per_c[:2]),
        "batchnorm.batchnorm_eval": ((x4, gamma, beta, mean, var), [x4]),
        "batchnorm.batchnorm_vjp": ((x4, gamma, dy4), [x4] + per_c[:2]),
        "batchnorm.batchnorm_eval_vjp": ((x4, gamma, mean, var, dy4), [x4] + per_c),
        "layernorm": ((x3, r(17), r(17)), [x3]),
        "layernorm.layernorm_vjp": ((x3, r(17), g3), [x3, np.empty(17, dtype),
                                                       np.empty(17, dtype)]),
        "cross_entropy": ((z, t), [np.empty((), dtype)]),
        "cross_entropy.cross_entropy_vjp": ((z, t, 1.5), [z]),
    }


KERNELS = tuple(_cases(np.random.default_rng(0), np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_reduction_kernels_match_their_definitions(kernel, dtype, rng):
    assert_matches_definition(kernel, *_cases(rng, dtype)[kernel], dtype)


@pytest.mark.parametrize("kernel", ["batchnorm.batchnorm_vjp", "layernorm.layernorm_vjp",
                                    "cross_entropy", "cross_entropy.cross_entropy_vjp"])
def test_one_thread_a_block_is_the_cpu_serial_order_bitwise(kernel, monkeypatch, rng):
    # with one thread the partial is the whole serial sum: the CPU kernel's arithmetic
    monkeypatch.setattr(config, "CUDA_THREADS_PER_BLOCK", 1)
    args, templates = _cases(rng, np.float64)[kernel]
    actual = run_outputs(get(kernel, "cuda"), args, templates)
    for a, c in zip(actual, run_outputs(get(kernel, "cpu"), args, templates)):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("threads", [2, 8, 32])
def test_other_block_sizes_agree(threads, monkeypatch, rng):
    monkeypatch.setattr(config, "CUDA_THREADS_PER_BLOCK", threads)
    args, templates = _cases(rng, np.float64)["batchnorm.batchnorm_vjp"]
    for a, e in zip(*both("batchnorm.batchnorm_vjp", args, templates)):
        assert_close(a, e)


def test_reductions_are_deterministic(rng):
    cases = _cases(rng, np.float32)
    for kernel, (args, templates) in cases.items():
        first = run_outputs(get(kernel, "cuda"), args, templates)
        again = run_outputs(get(kernel, "cuda"), args, templates)
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel", ["batchnorm", "layernorm.layernorm_vjp",
                                    "cross_entropy.cross_entropy_vjp"])
def test_device_arrays_in_and_out(kernel, cuda, no_transfers, rng):
    args, templates = _cases(rng, np.float64)[kernel]
    assert_device_run_matches_host_run(cuda, no_transfers, kernel, args, templates)


#: bound when ``_tree_sum_kernel`` compiles (see ``refode.kernels.cuda.specialise``).
cuda = None


def _tree_sum_kernel(x, out):
    """One block: ``out[0]`` = :func:`tree_sum` of ``x`` (``cuda`` comes with compilation)."""
    buf = cuda.shared.array(0, float64)
    tid = cuda.threadIdx.x
    buf[tid] = x[tid]
    out[0] = tree_sum(buf, tid)


@pytest.mark.parametrize("threads", [1, 2, 5, 7, 8])
def test_tree_sum_folds_in_the_documented_order(threads, monkeypatch):
    monkeypatch.setattr(config, "CUDA_THREADS_PER_BLOCK", threads)
    x = np.array([1e16, 1.0, -1e16, 3.0, 2.0 ** -30, 7.0, 1e-3, -5.0])[:threads]
    kernel = _reduce.compile_blocks(_tree_sum_kernel).tree_sum_kernel
    out = np.zeros(1)
    launch_blocks(kernel, 1, threads, threads * _reduce.SHARED_ITEM, x, out)
    buf, s = x.copy(), _reduce.block_constants()["HALF"]
    while s > 0:  # buf[t] += buf[t + s] for s = HALF, HALF / 2, ..., 1
        for t in range(min(s, threads - s)):
            buf[t] += buf[t + s]
        s //= 2
    assert out[0] == buf[0]
