"""The backend as an object: which kernels run, and where their arrays live.

>>> from refode import backend
>>> cpu = backend.get("cpu")
>>> cpu.kernel("dense").__module__
'refode.kernels.cpu.dense'

A model holds a :class:`Backend` and calls ``backend.kernel(op)``; files record
``backend.name``. ``"reference"`` is the NumPy definition of every kernel (slow, the
meaning), ``"cpu"`` the Numba CPU kernels (the default), ``"cuda"`` the numba.cuda
kernels. CUDA kernels take host or device arrays: :meth:`Backend.to_device` moves an
array once so that later kernel calls do not copy it again, :meth:`Backend.to_host`
brings a result back. Getting the CUDA backend imports ``numba.cuda``; importing
refode never does.

Array operations that follow their arrays
-----------------------------------------
The integrator and the models compute between kernels with the functions below. Each
takes host (NumPy) or device arrays and computes where they are: for host arrays it
*is* the NumPy expression named in its docstring (same operations, same order: the CPU
path is bitwise what it was), for device arrays it launches the elementwise CUDA
kernels of :mod:`refode.kernels.cuda._elementwise` and the result stays on the device.
A device array never meets NumPy arithmetic, so no host round trip happens between
two kernels: :func:`on_device`, :func:`empty`, :func:`empty_like`, :func:`zeros_like`,
:func:`contiguous`, :func:`add`, :func:`scale`, :func:`axpy`, :func:`add_scaled`
(in place), :func:`copy`, :func:`stack`, :func:`concatenate`, :func:`to_host`.
"""
import numpy as np

from . import kernels
from .errors import RefodeError
from .kernels.cpu import _elementwise as _host

#: the backend names, in the order tests compare them.
NAMES = kernels.BACKENDS


class Backend:
    """One kernel implementation: ``name`` is one of :data:`NAMES`.

    Use :func:`get` to make one (it checks that the backend can run here).
    """

    def __init__(self, name):
        if name not in NAMES:
            raise RefodeError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
        self.name = name

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __eq__(self, other):
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def kernel(self, op):
        """The implementation of kernel ``op`` (as :func:`refode.kernels.get`)."""
        return kernels.get(op, self.name)

    def available(self):
        """True when this backend can run here (CUDA: numba-cuda and a GPU or the simulator)."""
        return self.name != "cuda" or _cuda_problem() is None

    def to_device(self, x):
        """``x`` where this backend computes: a CUDA device array for ``"cuda"``, else ``x``."""
        if self.name != "cuda":
            return x
        from .kernels.cuda import cuda_module, to_device

        return to_device(cuda_module(), x)

    def to_host(self, x):
        """``x`` as a NumPy array (a device array is copied back)."""
        return to_host(x)

    @property
    def device(self):
        """True when this backend computes on device arrays (``"cuda"``)."""
        return self.name == "cuda"

    def empty(self, shape, dtype):
        """An uninitialised array where this backend computes (``np.empty`` on the host)."""
        if not self.device:
            return np.empty(shape, dtype=dtype)
        return _device().empty(shape, dtype)


def on_device(x):
    """True for a CUDA device array (real or simulated), False for host arrays and None."""
    return hasattr(x, "copy_to_host")


def _device():
    """The elementwise CUDA kernels (imported on first use of a device array)."""
    from .kernels.cuda import _elementwise

    return _elementwise


def to_host(x):
    """``x`` as a NumPy array: a device array is copied back (``np.asarray`` otherwise)."""
    return x.copy_to_host() if on_device(x) else np.asarray(x)


def to_device_like(x, like):
    """``x`` on the device if ``like`` is a device array (copied once), else ``x``."""
    if on_device(like) and not on_device(x) and x is not None:
        from .kernels.cuda import cuda_module, to_device

        return to_device(cuda_module(), x)
    return x


def empty(shape, dtype, like):
    """``np.empty(shape, dtype=dtype)``, on the device when ``like`` is a device array."""
    if on_device(like):
        return _device().empty(shape, dtype)
    return np.empty(shape, dtype=dtype)


def empty_like(x):
    """``np.empty_like(x)`` where ``x`` is."""
    return _device().empty_like(x) if on_device(x) else np.empty_like(x)


def zeros_like(x):
    """``np.zeros_like(x)`` where ``x`` is."""
    return _device().zeros_like(x) if on_device(x) else np.zeros_like(x)


def contiguous(x, like=None):
    """``np.ascontiguousarray(x)``; on the device if ``x`` or ``like`` is a device array
    (a host ``x`` is then copied there once; ``None`` stays ``None``)."""
    if on_device(x):
        return _device().contiguous(x)
    if on_device(like):
        return None if x is None else to_device_like(x, like)
    return np.ascontiguousarray(x)


def add(a, b):
    """``a + b`` (the other operand is moved to the device if one is there)."""
    if on_device(a) or on_device(b):
        return _device().add(to_device_like(a, b), to_device_like(b, a))
    return a + b


def scale(w, a):
    """``w * a`` for a Python number ``w`` (cast to the dtype of ``a`` on the device)."""
    return _device().scale(w, a) if on_device(a) else w * a


def axpy(a, w, b):
    """``a + w * b`` for a Python number ``w`` (host arrays of one shape and float dtype: one
    pass, bitwise NumPy's expression, :func:`refode.kernels.cpu._elementwise.axpy`)."""
    if on_device(a) or on_device(b):
        return _device().axpy(to_device_like(a, b), w, to_device_like(b, a))
    if _host.fits(a, b):
        return _host.axpy(a, w, b)
    return a + w * b


def add_scaled(out, w, b):
    """``out += w * b`` in place (``out`` may be a view, such as ``g[k]``)."""
    if on_device(out):
        _device().axpy(out, w, to_device_like(b, out), out=out)
    elif _host.fits(out, b):
        _host.axpy(out, w, b, out=out)
    else:
        out += w * b


def copy(x):
    """``np.array(x)``: a new array where ``x`` is."""
    return _device().copy(x) if on_device(x) else np.array(x)


def stack(arrays):
    """``np.stack(arrays)`` where the first array is (one device array for device arrays)."""
    return _device().stack(arrays) if on_device(arrays[0]) else np.stack(arrays)


def concatenate(arrays):
    """``np.concatenate([a.ravel() for a in arrays])`` where the first array is."""
    if on_device(arrays[0]):
        return _device().concatenate(arrays)
    return np.concatenate([a.ravel() for a in arrays])


def _cuda_problem():
    """Why the CUDA backend cannot run here (one line), or None."""
    try:
        from numba import cuda
    except ImportError:
        return "the CUDA backend needs the numba-cuda package: `pip install refode[cuda]`"
    if not cuda.is_available():
        return ("no CUDA GPU is available; use backend='cpu', or set NUMBA_ENABLE_CUDASIM=1 "
                "before importing numba to run the CUDA kernels in the simulator")
    return None


def get(backend="cpu"):
    """The :class:`Backend` named ``backend`` (a Backend passes through).

    Raises
    ------
    RefodeError
        For an unknown name, or for ``"cuda"`` without numba-cuda or a GPU (one line
        saying what to do).
    """
    if isinstance(backend, Backend):
        return backend
    result = Backend(backend)
    problem = result.name == "cuda" and _cuda_problem()
    if problem:
        raise RefodeError(problem)
    return result
