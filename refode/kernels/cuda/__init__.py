"""numba.cuda kernels: the CPU modules' bodies compiled as device functions, and one launcher.

Importing a module of this package needs the ``numba-cuda`` package (``pip install
refode[cuda]``) and, outside the simulator (``NUMBA_ENABLE_CUDASIM=1``), a GPU. Each op
module compiles the bodies of its CPU module with :func:`device`, wraps each in a
one-thread-per-task kernel with :func:`grid` and runs it with :func:`launch`, which
takes host or device arrays: host arrays are copied to the device for the call and
the outputs among them copied back; device arrays stay where they are (see
:meth:`refode.backend.Backend.to_device`), so a caller that keeps its arrays on the
device pays no transfer.
"""
import numpy as np

from ... import config
from ...backend import _cuda_problem
from ...errors import RefodeError
from .._compile import bodies, loop
from ..workspace import Workspace


def cuda_module():
    """Return ``numba.cuda``, or raise a one-line error when it cannot run here (no
    numba-cuda package, or neither a GPU nor the simulator)."""
    problem = _cuda_problem()
    if problem:
        raise RefodeError(problem)
    from numba import cuda

    return cuda


def blocks_for(n):
    """Number of blocks of ``config.CUDA_THREADS_PER_BLOCK`` threads covering ``n`` items."""
    tpb = config.CUDA_THREADS_PER_BLOCK
    return max(1, (n + tpb - 1) // tpb), tpb


def on_device(x):
    """True for a CUDA device array (real or simulated), False for a host array."""
    return hasattr(x, "copy_to_host")


def to_device(cuda, x):
    """``x`` as a device array (device arrays pass through; host arrays are copied)."""
    return x if on_device(x) else cuda.to_device(np.ascontiguousarray(x))


def device(*functions):
    """The bodies ``functions`` compiled as CUDA device functions (see ``_compile.bodies``)."""
    return bodies(cuda_module().jit(device=True), *functions)


def grid(body):
    """A ``@cuda.jit`` kernel ``kernel(n, *args)``: one thread per task ``i < n`` runs ``body``."""
    cuda = cuda_module()
    return loop(body, "cuda", cuda.jit, cuda=cuda)


def launch(kernel, n, *args, n_out=1):
    """Run ``kernel(n, *args)`` over ``n`` threads; the last ``n_out`` arguments are outputs.

    Host arrays are copied to the device (device arrays and scalars pass through);
    host outputs are copied back after the kernel.
    """
    cuda = cuda_module()
    moved = [to_device(cuda, a) if isinstance(a, np.ndarray) else a for a in args]
    kernel[blocks_for(n)](n, *moved)
    for host, dev in zip(args[len(args) - n_out:], moved[len(moved) - n_out:]):
        if isinstance(host, np.ndarray):
            dev.copy_to_host(host)


class Runner:
    """The CUDA twin of :class:`refode.kernels._compile.Runner`: one thread per task.

    ``run(name, n, *args, n_out=1)`` launches body ``name`` (compiled as a device function)
    over ``n`` threads with :func:`launch`; :meth:`empty` gives device scratch arrays.
    """

    def __init__(self, functions):
        self.compiled = device(*functions, _gemm)
        self._kernels = {}

    def __call__(self, name, n, *args, n_out=1):
        if name not in self._kernels:
            self._kernels[name] = grid(getattr(self.compiled, name))
        launch(self._kernels[name], n, *args, n_out=n_out)

    @staticmethod
    def empty(*shape, dtype=np.float64):
        """An uninitialised device array."""
        return cuda_module().device_array(shape, dtype=dtype)

    @staticmethod
    def workspace(workspace):
        """Device buffers for one call (a caller's ``workspace`` holds host arrays: unused)."""
        return Workspace(cuda_module().device_array)

    @staticmethod
    def to_device(a):
        """``a`` on the device (a device array passes through)."""
        return to_device(cuda_module(), a)

    def matmul(self, a, b, out, ta=False, tb=False):
        """``out = op(a) @ op(b)`` for 2-D arrays, a thread per element, float64 sums in order."""
        self("gemm", out.size, a, b, ta, tb, out)


def _gemm(a, b, ta, tb, out, t):
    """Task ``t``: element ``t`` of ``out = op(a) @ op(b)``."""
    i, j = divmod(t, out.shape[1])
    acc = 0.0
    for k in range(a.shape[0] if ta else a.shape[1]):
        acc += (a[k, i] if ta else a[i, k]) * (b[j, k] if tb else b[k, j])
    out[i, j] = acc


def port(host):
    """The public kernels of CPU module ``host`` on CUDA: ``host.drivers`` with a CUDA runner."""
    return host.drivers(Runner(host.BODIES))
