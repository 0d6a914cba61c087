"""Host-side helpers shared by the CUDA drivers of the normalisation, attention and loss ops."""
import numpy as np

from . import on_device, to_device


def rows(a):
    """View a C-contiguous array (host or device) as rows (M, last axis)."""
    return a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a


def inputs(cuda, *arrays):
    """Device copies of host arrays (device arrays pass through)."""
    return [to_device(cuda, a) for a in arrays]


def scratch(cuda, *shape, dtype=np.float64):
    """An uninitialised device array (float64 unless told)."""
    return cuda.device_array(shape, dtype=dtype)


def copy_back(pairs):
    """Copy each device result into its host output (device outputs are already in place)."""
    for host, dev in pairs:
        if not on_device(host):
            dev.copy_to_host(host)
