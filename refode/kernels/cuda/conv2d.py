"""CUDA kernels of ``conv2d`` (see :mod:`refode.kernels.reference.conv2d`).

Direct convolution, one thread per output element (of ``out``, ``dx`` or ``dw``),
sums in float64 over the contracted indices in a fixed order. ``workspace`` is
accepted for a common signature and ignored (no temporaries are needed).
"""
from . import blocks_for, cuda_module, on_device, require_gpu, to_device

cuda = cuda_module()


@cuda.jit
def _forward_kernel(x, w, stride, pad, out):
    """``out[n, o, i, j] = sum_{c, ki, kj} w[o, c, ki, kj] x[n, c, s i + ki - p, s j + kj - p]``."""
    t = cuda.grid(1)
    n_img, n_out, ho, wo = out.shape
    if t < n_img * n_out * ho * wo:
        n, rest = t // (n_out * ho * wo), t % (n_out * ho * wo)
        o, rest = rest // (ho * wo), rest % (ho * wo)
        i, j = rest // wo, rest % wo
        k = w.shape[2]
        acc = 0.0
        for c in range(x.shape[1]):
            for ki in range(k):
                h = i * stride - pad + ki
                if 0 <= h < x.shape[2]:
                    for kj in range(k):
                        v = j * stride - pad + kj
                        if 0 <= v < x.shape[3]:
                            acc += w[o, c, ki, kj] * x[n, c, h, v]
        out[n, o, i, j] = acc


@cuda.jit
def _dx_kernel(w, g, stride, pad, dx):
    """``dx[n, c, h, v] = sum over (o, ki, kj) hitting (h, v) of w[o, c, ki, kj] g[n, o, i, j]``."""
    t = cuda.grid(1)
    n_img, chans, height, width = dx.shape
    if t < n_img * chans * height * width:
        n, rest = t // (chans * height * width), t % (chans * height * width)
        c, rest = rest // (height * width), rest % (height * width)
        h, v = rest // width, rest % width
        k = w.shape[2]
        acc = 0.0
        for o in range(w.shape[0]):
            for ki in range(k):
                num_i = h + pad - ki
                i = num_i // stride
                if num_i >= 0 and num_i % stride == 0 and i < g.shape[2]:
                    for kj in range(k):
                        num_j = v + pad - kj
                        j = num_j // stride
                        if num_j >= 0 and num_j % stride == 0 and j < g.shape[3]:
                            acc += w[o, c, ki, kj] * g[n, o, i, j]
        dx[n, c, h, v] = acc


@cuda.jit
def _dw_kernel(x, g, stride, pad, dw):
    """``dw[o, c, ki, kj] = sum_{n, i, j} g[n, o, i, j] x[n, c, s i + ki - p, s j + kj - p]``."""
    t = cuda.grid(1)
    n_out, chans, k, _ = dw.shape
    if t < n_out * chans * k * k:
        o, rest = t // (chans * k * k), t % (chans * k * k)
        c, rest = rest // (k * k), rest % (k * k)
        ki, kj = rest // k, rest % k
        acc = 0.0
        for n in range(x.shape[0]):
            for i in range(g.shape[2]):
                h = i * stride - pad + ki
                if 0 <= h < x.shape[2]:
                    for j in range(g.shape[3]):
                        v = j * stride - pad + kj
                        if 0 <= v < x.shape[3]:
                            acc += g[n, o, i, j] * x[n, c, h, v]
        dw[o, c, ki, kj] = acc


def _launch(kernel, inputs, stride, pad, out):
    """One thread per element of ``out``; copy a host ``out`` back."""
    d_out = to_device(cuda, out)
    blocks, threads = blocks_for(out.size)
    kernel[blocks, threads](*[to_device(cuda, a) for a in inputs], stride, pad, d_out)
    if not on_device(out):
        d_out.copy_to_host(out)


def conv2d(x, w, stride, pad, out, *, workspace=None):
    """Host driver: same arguments as the NumPy definition; host or device arrays."""
    require_gpu(cuda)
    _launch(_forward_kernel, (x, w), stride, pad, out)


def conv2d_vjp(x, w, g, stride, pad, dx, dw, *, workspace=None):
    """Host driver: same arguments as the NumPy definition; host or device arrays."""
    require_gpu(cuda)
    d_g = to_device(cuda, g)
    _launch(_dx_kernel, (w, d_g), stride, pad, dx)
    _launch(_dw_kernel, (x, d_g), stride, pad, dw)
