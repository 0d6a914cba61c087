"""CUDA kernel of ``positions`` (see :mod:`refode.kernels.reference.positions`)."""
import math

from . import blocks_for, cuda_module, require_gpu
from ._io import copy_back, inputs

cuda = cuda_module()

#: the base of the wavelengths in "Attention is all you need" (Vaswani et al. 2017).
POSITION_BASE = 10000.0


@cuda.jit
def _positions_kernel(out):
    k = cuda.grid(1)
    if k < out.size:
        width = out.shape[1]
        p = k // width
        j = k % width
        angle = float(p) / math.pow(POSITION_BASE, float(j // 2 * 2) / width)
        out[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)


def positions(out):
    """Host driver; arguments as :func:`refode.kernels.reference.positions.positions`."""
    require_gpu(cuda)
    (d_out,) = inputs(cuda, out)
    _positions_kernel[blocks_for(out.size)](d_out)
    copy_back([(out, d_out)])
