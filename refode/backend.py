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
"""
import numpy as np

from . import kernels
from .errors import RefodeError

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
        return x.copy_to_host() if hasattr(x, "copy_to_host") else np.asarray(x)


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
