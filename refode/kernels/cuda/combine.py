"""CUDA kernel of ``combine`` (see :func:`refode.kernels.reference.combine.combine`)."""
from . import blocks_for, cuda_module, on_device, require_gpu, to_device

cuda = cuda_module()


@cuda.jit
def _combine_kernel(indptr, indices, data, src, out):
    """One thread per output element; sums in the stored order, in float64."""
    k = cuda.grid(1)
    width = src.shape[1]
    if k < out.shape[0] * width:
        j = k // width
        p = k - j * width
        acc = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            acc += data[q] * src[indices[q], p]
        out[j, p] = acc


def combine(indptr, indices, data, src, out):
    """Host driver: same arguments as the NumPy definition; host or device arrays."""
    require_gpu(cuda)
    blocks, threads = blocks_for(out.shape[0] * src.shape[1])
    d_out = to_device(cuda, out)
    args = [to_device(cuda, x) for x in (indptr, indices, data, src)]
    _combine_kernel[blocks, threads](*args, d_out)
    if not on_device(out):
        d_out.copy_to_host(out)
