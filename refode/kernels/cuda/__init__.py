"""numba.cuda kernels with their host drivers.

Importing a module of this package needs the ``numba-cuda`` package (``pip install
refode[cuda]``) and, outside the simulator (``NUMBA_ENABLE_CUDASIM=1``), a GPU.
"""
from ... import config
from ...errors import RefodeError


def cuda_module():
    """Return ``numba.cuda`` or raise a clear error when it cannot be used."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RefodeError(
            "the CUDA backend needs the numba-cuda package: `pip install refode[cuda]`"
        ) from exc
    return cuda


def blocks_for(n):
    """Number of blocks of ``config.CUDA_THREADS_PER_BLOCK`` threads covering ``n`` items."""
    tpb = config.CUDA_THREADS_PER_BLOCK
    return max(1, (n + tpb - 1) // tpb), tpb


def require_gpu(cuda):
    """Raise a clear error when neither a GPU nor the simulator is available."""
    if not cuda.is_available():
        raise RefodeError(
            "no CUDA GPU is available; use backend='cpu', or set NUMBA_ENABLE_CUDASIM=1 "
            "before importing numba to run the CUDA kernels in the simulator"
        )


def on_device(x):
    """True for a CUDA device array (real or simulated), False for a host array."""
    return hasattr(x, "copy_to_host")


def to_device(cuda, x):
    """``x`` as a device array (device arrays pass through; host arrays are copied)."""
    import numpy as np

    return x if on_device(x) else cuda.to_device(np.ascontiguousarray(x))
