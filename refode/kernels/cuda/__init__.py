"""numba.cuda kernels: the CPU modules' bodies compiled as device functions, and launchers.

Importing a module of this package needs the ``numba-cuda`` package (``pip install
refode[cuda]``) and, outside the simulator (``NUMBA_ENABLE_CUDASIM=1``), a GPU. Two kinds
of kernel run here:

- *task* kernels: an op module compiles the bodies of its CPU module with
  :func:`device`, wraps each in a one-thread-per-task kernel with :func:`grid` and runs
  it with :func:`launch` (elementwise ops, im2col, the bias bodies);
- *block* kernels, written for the GPU: the tiled shared-memory GEMM
  (:mod:`._gemm`, behind :meth:`Runner.matmul`) and the one-block-per-row/channel
  reductions (:mod:`._reduce` and the op modules), compiled by :func:`specialise` for
  the block size of the moment and run with :func:`launch_blocks`.

Every launcher takes host or device arrays: host arrays are copied to the device for
the call and the outputs among them copied back; device arrays stay where they are
(see :meth:`refode.backend.Backend.to_device`), so a caller that keeps its arrays on
the device pays no transfer. Every kernel writes each output element from one thread,
in a fixed order of arithmetic, without atomics: results are deterministic.
Kernels compile on first use (importing a module here compiles nothing).

On a GPU, NVVM contracts a multiply followed by an add into one fused multiply-add
(numba-cuda has no switch for it short of ``fastmath``), which rounds once where NumPy
rounds twice: results can differ from the CPU's in the last bits, deterministically.
The simulator computes as NumPy does.
"""
import types

import numpy as np

from ... import config
from ...backend import _cuda_problem
from ...errors import RefodeError
from .._compile import bodies, loop
from ..workspace import Workspace

#: compiled block kernels, by (functions, constants): see :func:`specialise`.
_SPECIALISED = {}


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


def moved(args):
    """``args`` with each host array copied to the device (device arrays, scalars pass)."""
    cuda = cuda_module()
    return [to_device(cuda, a) if isinstance(a, np.ndarray) else a for a in args]


def copy_back(args, moved_args, n_out):
    """Copy the device copies of the host arrays among the last ``n_out`` ``args`` back."""
    for host, dev in zip(args[len(args) - n_out:], moved_args[len(moved_args) - n_out:]):
        if isinstance(host, np.ndarray):
            dev.copy_to_host(host)


def launch(kernel, n, *args, n_out=1):
    """Run ``kernel(n, *args)`` over ``n`` threads; the last ``n_out`` arguments are outputs.

    Host arrays are copied to the device (device arrays and scalars pass through);
    host outputs are copied back after the kernel.
    """
    on = moved(args)
    kernel[blocks_for(n)](n, *on)
    copy_back(args, on, n_out)


def launch_blocks(kernel, blocks, threads, shared, *args, n_out=1):
    """Run ``kernel(*args)`` on a grid of ``blocks`` blocks of ``threads`` threads (ints or
    tuples) with ``shared`` bytes of dynamic shared memory a block; host arrays and outputs
    as for :func:`launch`.

    Block kernels take their shared memory as the dynamic array ``cuda.shared.array(0,
    dtype)``: Numba's simulator allocates a static ``cuda.shared.array(shape, dtype)``
    lazily, per source line, without a lock, so two threads of a block can race to
    allocate it and end up with different arrays; the dynamic array is one buffer.
    """
    on = moved(args)
    if int(np.prod(blocks)) > 0:
        kernel[blocks, threads, 0, shared](*on)
    copy_back(args, on, n_out)


def specialise(functions, **constants):
    """``functions`` (plain Python) compiled for CUDA, with ``constants`` as globals.

    Each function is cloned with the globals of its module plus ``cuda`` (the
    :func:`cuda_module`) and ``constants`` (compile-time constants such as the block
    size ``TPB`` or the GEMM's tile side and accumulator dtype); functions whose name
    ends in ``_kernel`` become ``@cuda.jit`` kernels, the others device functions, and a
    call from one to another of the group goes to the compiled version. Compiled once per
    ``(functions, constants)``; numba then specialises each on its argument types.

    Returns
    -------
    types.SimpleNamespace
        The compiled functions under their names without the leading underscore.
    """
    key = (tuple(functions), tuple(sorted(constants.items(), key=lambda item: item[0])))
    found = _SPECIALISED.get(key)
    if found is None:
        cuda = cuda_module()
        scopes, compiled = {}, {}
        for fn in functions:
            scope = scopes.setdefault(fn.__module__, dict(fn.__globals__, cuda=cuda, **constants))
            clone = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__)
            clone.__qualname__, clone.__module__ = fn.__qualname__, fn.__module__
            kernel = fn.__name__.endswith("_kernel")
            compiled[fn.__name__] = cuda.jit(clone) if kernel else cuda.jit(device=True)(clone)
        for scope in scopes.values():
            scope.update(compiled)
        found = types.SimpleNamespace(**{n.lstrip("_"): f for n, f in compiled.items()})
        _SPECIALISED[key] = found
    return found


class Runner:
    """The CUDA twin of :class:`refode.kernels._compile.Runner`.

    ``run(name, n, *args, n_out=1)`` launches body ``name`` (compiled as a device function)
    over ``n`` threads with :func:`launch`; :meth:`matmul` is the tiled GEMM;
    :meth:`empty` gives device scratch arrays.
    """

    #: columns per thread of a column reduction (neighbouring threads read neighbouring
    #: columns: coalesced).
    LANES = 1

    def __init__(self, functions):
        self.compiled = device(*functions)
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

    @staticmethod
    def matmul(a, b, out, ta=False, tb=False):
        """``out = op(a) @ op(b)`` for 2-D arrays: the tiled shared-memory GEMM of
        :func:`refode.kernels.cuda._gemm.matmul`, accumulating in the inputs' dtype."""
        from ._gemm import matmul

        matmul(a, b, out, ta, tb)


def port(host):
    """The public kernels of CPU module ``host`` on CUDA: ``host.drivers`` with a CUDA runner."""
    return host.drivers(Runner(host.BODIES))
