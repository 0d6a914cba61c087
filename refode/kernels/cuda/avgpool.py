"""CUDA kernels of ``avgpool`` (see :mod:`refode.kernels.reference.avgpool`)."""
from . import blocks_for, cuda_module, on_device, require_gpu, to_device

cuda = cuda_module()


@cuda.jit
def _avgpool_kernel(x, out):
    """One thread per ``(n, c)``: the mean of ``x[n, c]``, summed in float64 in row order."""
    t = cuda.grid(1)
    n_img, chans, height, width = x.shape
    if t < n_img * chans:
        n, c = t // chans, t % chans
        acc = 0.0
        for h in range(height):
            for v in range(width):
                acc += x[n, c, h, v]
        out[n, c] = acc / (height * width)


@cuda.jit
def _vjp_kernel(g, dx):
    """One thread per element of ``dx``: ``g[n, c] / (H W)``."""
    t = cuda.grid(1)
    n_img, chans, height, width = dx.shape
    if t < dx.size:
        nc = t // (height * width)
        n, c = nc // chans, nc % chans
        dx[n, c, (t // width) % height, t % width] = g[n, c] / (height * width)


def _launch(kernel, n_threads, src, out):
    """Run ``kernel(src, out)`` over ``n_threads`` threads; copy a host ``out`` back."""
    require_gpu(cuda)
    d_out = to_device(cuda, out)
    blocks, threads = blocks_for(n_threads)
    kernel[blocks, threads](to_device(cuda, src), d_out)
    if not on_device(out):
        d_out.copy_to_host(out)


def avgpool(x, out):
    """Host driver: same arguments as the NumPy definition; host or device arrays."""
    _launch(_avgpool_kernel, out.size, x, out)


def avgpool_vjp(g, dx):
    """Host driver: same arguments as the NumPy definition; host or device arrays."""
    _launch(_vjp_kernel, dx.size, g, dx)
