"""Fixtures of the CUDA kernel tests (Numba's simulator unless ``NUMBA_ENABLE_CUDASIM=0``).

``tests/conftest.py`` patches ``config.CUDA_THREADS_PER_BLOCK`` to 7; here the GEMM tile
side is patched to :data:`SIM_TILE` (which divides none of the test shapes), and, under
the simulator, the interpreter's thread switch interval is shortened: the simulator runs
a block's threads as Python threads and its ``syncthreads`` polls them while holding the
GIL, so with the default 5 ms interval every barrier costs milliseconds per thread.
"""
import contextlib
import os
import sys

import pytest

from refode.kernels.cuda import _gemm, cuda_module

#: GEMM tile side in these tests: 16 threads a block.
SIM_TILE = 4
#: interpreter switch interval (seconds) while the simulator runs these tests.
SIM_SWITCH_INTERVAL = 1e-4


@pytest.fixture(scope="package", autouse=True)
def _fast_simulator_barriers():
    """The short switch interval for the tests of this directory only."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":  # pragma: no cover - a real GPU
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SIM_SWITCH_INTERVAL)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture(autouse=True)
def tile(monkeypatch):
    """The GEMM tile side of the test (:data:`SIM_TILE`); ``tile(side)`` changes it."""
    monkeypatch.setattr(_gemm, "TILE", SIM_TILE)

    def set_tile(side):
        monkeypatch.setattr(_gemm, "TILE", side)
        return side

    return set_tile


@pytest.fixture
def cuda():
    """``numba.cuda`` (the simulator in CI)."""
    return cuda_module()


@pytest.fixture
def no_transfers(cuda, monkeypatch):
    """``with no_transfers(): ...`` fails on any host-to-device copy inside the block."""

    def refuse(*args, **kwargs):
        raise AssertionError("a host array was copied to the device")

    @contextlib.contextmanager
    def guard():
        with monkeypatch.context() as patch:
            patch.setattr(cuda, "to_device", refuse)
            yield

    return guard
