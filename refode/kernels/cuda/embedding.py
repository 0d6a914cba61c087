"""CUDA kernels of ``embedding`` (see :mod:`refode.kernels.reference.embedding`).

The lookup uses one thread per output element; the VJP one thread per column of
``dweight``, adding the positions in row-major order (deterministic, no atomics).
"""
from . import blocks_for, cuda_module, require_gpu
from ._io import copy_back, inputs, rows

cuda = cuda_module()


@cuda.jit
def _lookup_kernel(ids, weight, out):
    k = cuda.grid(1)
    if k < out.size:
        r = k // out.shape[1]
        j = k % out.shape[1]
        out[r, j] = weight[ids[r], j]


@cuda.jit
def _scatter_kernel(ids, dout, dweight):
    j = cuda.grid(1)
    if j < dweight.shape[1]:
        for v in range(dweight.shape[0]):
            dweight[v, j] = 0.0
        for r in range(ids.shape[0]):
            dweight[ids[r], j] += dout[r, j]


def embedding(ids, weight, out):
    """Host driver; arguments as :func:`refode.kernels.reference.embedding.embedding`."""
    require_gpu(cuda)
    d_ids, d_w, d_out = inputs(cuda, ids.reshape(-1), weight, rows(out))
    _lookup_kernel[blocks_for(d_out.size)](d_ids, d_w, d_out)
    copy_back([(rows(out), d_out)])


def embedding_vjp(ids, dout, dweight):
    """Host driver; arguments as :func:`refode.kernels.reference.embedding.embedding_vjp`."""
    require_gpu(cuda)
    d_ids, d_dout, d_dw = inputs(cuda, ids.reshape(-1), rows(dout), dweight)
    _scatter_kernel[blocks_for(dweight.shape[1])](d_ids, d_dout, d_dw)
    copy_back([(dweight, d_dw)])
