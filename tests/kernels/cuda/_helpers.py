"""Helpers of the CUDA kernel tests."""
import numpy as np

from refode.kernels import get

from ..vjp_checks import run_outputs

DTYPES = (np.float64, np.float32)


def device_copies(cuda, arrays):
    """Device copies of the host arrays among ``arrays`` (None and scalars pass)."""
    return [cuda.to_device(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
            for a in arrays]


def device_outputs(cuda, templates):
    """NaN-filled device arrays shaped like ``templates`` (None passes)."""
    return [None if t is None else cuda.to_device(np.full(np.shape(t), np.nan,
                                                          dtype=np.asarray(t).dtype))
            for t in templates]


def host(outs):
    """Host copies of device outputs (None passes)."""
    return [None if o is None else o.copy_to_host() for o in outs]


def both(kernel, args, templates, backend="cuda"):
    """Outputs of ``backend``'s and the reference's ``kernel`` on the same inputs."""
    return (run_outputs(get(kernel, backend), args, templates),
            run_outputs(get(kernel, "reference"), args, templates))
