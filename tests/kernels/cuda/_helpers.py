"""Helpers of the CUDA kernel tests."""
import numpy as np

from refode.kernels import get

from .._checks import assert_close
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


def assert_matches_definition(kernel, args, templates, dtype):
    """The CUDA ``kernel``'s outputs are of ``dtype`` and close to the reference's."""
    actual, expected = both(kernel, args, templates)
    for a, e in zip(actual, expected):
        assert a.dtype == dtype
        assert_close(a, e)


def assert_device_run_matches_host_run(cuda, no_transfers, kernel, args, templates):
    """``kernel`` on device inputs and outputs copies nothing and gives bitwise what it
    gives on host arrays."""
    expected = run_outputs(get(kernel, "cuda"), args, templates)
    d_args, d_outs = device_copies(cuda, args), device_outputs(cuda, templates)
    with no_transfers():
        get(kernel, "cuda")(*d_args, *d_outs)
    for a, e in zip(host(d_outs), expected):
        np.testing.assert_array_equal(a, e)
