"""Test configuration shared by the whole suite.

The CUDA kernels run in Numba's simulator unless a GPU run is asked for with
``NUMBA_ENABLE_CUDASIM=0``; the variable must be set before numba is imported,
which is why it is set here, before any test module imports refode.
``REFODE_PARALLEL_MIN_BYTES`` is 0 for the same reason (read when refode is imported).
"""
import os
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# every kernel call splits its tasks over the threads, however small the test's shapes
# (refode.config.PARALLEL_MIN_BYTES), so that the thread-count tests exercise the split.
os.environ.setdefault("REFODE_PARALLEL_MIN_BYTES", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from refode import config  # noqa: E402

from . import profiles  # noqa: E402

#: small odd block size so that tiny inputs span several CUDA blocks in the simulator.
SIM_THREADS_PER_BLOCK = 7

#: interpreter switch interval under the simulator: its syncthreads polls a block's threads
#: while holding the GIL, so at the default 5 ms every barrier costs ~5 ms per thread.
SIM_SWITCH_INTERVAL = 1e-4
#: GEMM tile side under the simulator: 16 simulated threads a block instead of 256.
SIM_TILE = 4

if os.environ["NUMBA_ENABLE_CUDASIM"] == "1":
    config.CUDA_THREADS_PER_BLOCK = SIM_THREADS_PER_BLOCK
    sys.setswitchinterval(SIM_SWITCH_INTERVAL)
    from refode.kernels.cuda import _gemm  # noqa: E402  (does not import numba.cuda)

    _gemm.TILE = SIM_TILE

profiles.load()


@pytest.fixture
def rng():
    """A seeded generator, fresh for every test."""
    return np.random.default_rng(20211206)
