"""Kernels: every op exists three times, with the same name and arguments.

- ``refode.kernels.reference.<op>``: a short NumPy definition, the meaning of the op;
- ``refode.kernels.cpu.<op>``: the Numba CPU kernel (the default backend);
- ``refode.kernels.cuda.<op>``: numba.cuda kernels: the CPU bodies as
  ``cuda.jit(device=True)`` functions, one thread per task, for the elementwise ops; a
  tiled shared-memory GEMM and one-block-per-row reductions for the products and
  reductions (see :mod:`refode.kernels.cuda`).

Kernels only compute: they take preallocated outputs (passed last), trust their
inputs, and are called by public functions that validate. ``get(op, backend)``
returns one implementation; the CUDA modules are imported only when asked for, so
importing refode never needs a GPU or the ``numba-cuda`` package. Every backend's
module of an op exports the same ``__all__`` with the same signatures (a test checks).
"""
import importlib

from ..errors import RefodeError

#: the backends, in the order tests compare them.
BACKENDS = ("reference", "cpu", "cuda")
#: the compiled backends, which tests compare against the reference.
COMPILED = ("cpu", "cuda")
#: the kernel modules, present in every backend.
OPS = ("activation", "attention", "avgpool", "batchnorm", "bn_relu", "combine", "conv2d",
       "cross_entropy", "dense", "embedding", "layernorm", "positions")


def get(op, backend="cpu"):
    """Return the implementation of kernel ``op`` for ``backend``.

    Parameters
    ----------
    op : str
        ``"module"`` for the function of the same name in that kernel module
        (``"combine"``), or ``"module.function"`` for another function of it, such
        as the VJP that sits next to its forward op (``"conv2d.conv2d_vjp"``).
    backend : {"reference", "cpu", "cuda"} or refode.backend.Backend
        Which implementation.
    """
    backend = getattr(backend, "name", backend)
    if backend not in BACKENDS:
        raise RefodeError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module_name, _, func = op.partition(".")
    try:
        module = importlib.import_module(f"{__name__}.{backend}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(f".{module_name}"):
            raise RefodeError(f"unknown kernel {op!r} for backend {backend!r}") from None
        raise
    try:
        return getattr(module, func or module_name)
    except AttributeError:
        raise RefodeError(f"unknown kernel {op!r} for backend {backend!r}") from None
