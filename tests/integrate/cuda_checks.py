"""Helpers of the device-resident CUDA tests: transfer counting and strict device arrays.

:func:`transfers` counts every host -> device copy (``numba.cuda.to_device`` and
``copy_to_device`` from a host array) and device -> host copy (``copy_to_host``) while
it is active. :func:`strict_device_arrays` makes the simulator's device arrays behave
as real ones do: no NumPy arithmetic, no conversion with ``np.asarray`` (in the
simulator they silently wrap NumPy arrays, so a host expression on a device array
would pass there and fail on a GPU).
"""
import contextlib

import numpy as np
import pytest

#: attributes a real numba DeviceNDArray has and the simulator forwards to NumPy.
DEVICE_ATTRIBUTES = {"dtype", "size", "ndim", "strides", "itemsize", "nbytes", "flags",
                     "squeeze"}   # squeeze: the simulator's own copy checks
#: NumPy operators that device arrays must not be given.
OPERATORS = ("__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__",
             "__pow__", "__lt__", "__le__", "__gt__", "__ge__")


def cuda_or_skip():
    """``numba.cuda`` when the CUDA backend can run here (GPU or simulator), else skip."""
    cuda = pytest.importorskip("numba.cuda")
    from refode import backend

    if not backend.Backend("cuda").available():
        pytest.skip("no GPU and not in the CUDA simulator")
    return cuda


def _device_array_class(cuda):
    return type(cuda.device_array(1))


@contextlib.contextmanager
def transfers(monkeypatch):
    """Yield a dict ``{"to_device": n, "to_host": n}`` counting the copies made inside."""
    cuda = cuda_or_skip()
    counts = {"to_device": 0, "to_host": 0}
    cls = _device_array_class(cuda)
    to_device, to_host, copy_to_device = cuda.to_device, cls.copy_to_host, cls.copy_to_device

    def counted_to_device(*args, **kwargs):
        counts["to_device"] += 1
        return to_device(*args, **kwargs)

    def counted_to_host(self, *args, **kwargs):
        counts["to_host"] += 1
        return to_host(self, *args, **kwargs)

    def counted_copy_to_device(self, ary, *args, **kwargs):
        if not hasattr(ary, "copy_to_host"):
            counts["to_device"] += 1
        return copy_to_device(self, ary, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(cuda, "to_device", counted_to_device)
        m.setattr(cls, "copy_to_host", counted_to_host)
        m.setattr(cls, "copy_to_device", counted_copy_to_device)
        yield counts


@pytest.fixture
def strict_device_arrays(monkeypatch):
    """Simulated device arrays refuse NumPy arithmetic and host conversion (a no-op on a GPU,
    whose device arrays already do)."""
    cuda = cuda_or_skip()
    cls = _device_array_class(cuda)
    if cls.__name__ == "FakeCUDAArray":   # the simulator: NumPy behind every attribute
        forward = cls.__getattr__

        def strict(self, name):
            if name not in DEVICE_ATTRIBUTES:
                raise AttributeError(f"a device array has no {name!r} (host code on the "
                                     "device path)")
            return forward(self, name)

        monkeypatch.setattr(cls, "__getattr__", strict)
    for op in OPERATORS:
        if hasattr(cls, op):
            monkeypatch.setattr(cls, op, _refuse(op))
    yield


def _refuse(op):
    def refuse(self, *args):
        raise TypeError(f"NumPy {op} on a device array (host arithmetic on the device path)")
    return refuse


def close(got, want, rtol, what=""):
    """``|got - want| <= rtol * max|want|`` for arrays or dicts of arrays (host)."""
    if isinstance(want, dict):
        assert set(got) == set(want), what
        for k in want:
            close(got[k], want[k], rtol, f"{what}[{k}]")
        return
    assert isinstance(got, np.ndarray), (what, type(got))
    scale = max(float(np.abs(want).max()), 1e-300)
    assert np.abs(got - want).max() <= rtol * scale, (what, np.abs(got - want).max() / scale)
