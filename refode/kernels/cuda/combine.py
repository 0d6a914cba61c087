"""CUDA kernel of ``combine``: the CPU module's body, one thread per output element."""
from numba import float64

from ..cpu import combine as host
from . import cuda_module, device, launch

__all__ = ["combine"]

cuda = cuda_module()
_chunk = device(*host.BODIES).chunk


@cuda.jit
def _combine_kernel(n, indptr, indices, data, src, out):
    k = cuda.grid(1)
    if k < n:
        j, p = divmod(k, src.shape[1])
        acc = cuda.local.array(1, float64)  # the float64 accumulator of one element
        _chunk(indptr, indices, data, src, out, acc, j, p, p + 1)


def combine(indptr, indices, data, src, out):
    """Arguments as :func:`refode.kernels.reference.combine.combine`; host or device arrays."""
    launch(_combine_kernel, out.size, indptr, indices, data, src, out)
