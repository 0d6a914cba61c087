"""The one-thread-per-task CUDA kernels (activations, avgpool, embedding, positions) against
their NumPy definitions, on more tasks than one block of 7 threads holds.

These run the CPU modules' bodies; each task computes its outputs as the definition does
(the embedding VJP adds positions in row-major order, a column a thread), so they agree
within 1e-12 (float64) / 1e-5 (float32), and on device arrays without copies.
"""
import numpy as np
import pytest


from ._helpers import (DTYPES, assert_device_run_matches_host_run, assert_matches_definition)

pytestmark = pytest.mark.cuda

ACTIVATIONS = ("relu", "gelu", "elu", "tanh")


def _cases(rng, dtype):
    """``kernel -> (args, output templates)``."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, g = r(3, 11), r(3, 11)
    x4 = r(2, 5, 3, 4)                                   # 10 (n, c) planes
    ids = rng.integers(0, 6, size=(3, 5))                # 15 positions, 6 tokens
    cases = {}
    for name in ACTIVATIONS:
        cases[f"activation.{name}"] = ((x,), [x])
        cases[f"activation.{name}_vjp"] = ((x, g), [x])
    cases.update({
        "avgpool": ((x4,), [np.empty((2, 5), dtype)]),
        "avgpool.avgpool_vjp": ((r(2, 5),), [x4]),
        "embedding": ((ids, r(6, 9)), [np.empty((3, 5, 9), dtype)]),
        "embedding.embedding_vjp": ((ids, r(3, 5, 9)), [np.empty((6, 9), dtype)]),
        "positions": ((), [np.empty((9, 10), dtype)]),
    })
    return cases


KERNELS = tuple(_cases(np.random.default_rng(0), np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_task_kernels_match_their_definitions(kernel, dtype, rng):
    assert_matches_definition(kernel, *_cases(rng, dtype)[kernel], dtype)


@pytest.mark.parametrize("kernel", ["activation.gelu_vjp", "embedding.embedding_vjp"])
def test_task_kernels_on_device_arrays(kernel, cuda, no_transfers, rng):
    args, templates = _cases(rng, np.float64)[kernel]
    assert_device_run_matches_host_run(cuda, no_transfers, kernel, args, templates)
