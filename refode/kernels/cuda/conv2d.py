"""CUDA kernels of ``conv2d`` (see :mod:`refode.kernels.reference.conv2d`).

Direct convolution, one thread per output element (of ``out``, ``dx`` or ``dw``),
sums in float64 over the contracted indices in a fixed order. These bodies are
CUDA's own: the CPU kernel is im2col plus one BLAS GEMM outside its parallel loops,
a layout whose temporaries and GEMM have no counterpart here. ``workspace`` is
accepted for a common signature and ignored (no temporaries are needed).
"""
from . import Runner

__all__ = ["conv2d", "conv2d_vjp"]


def _forward(x, w, stride, pad, out, t):
    """``out[n, o, i, j] = sum_{c, ki, kj} w[o, c, ki, kj] x[n, c, s i + ki - p, s j + kj - p]``."""
    n_img, n_out, ho, wo = out.shape
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


def _dx(w, g, stride, pad, dx, t):
    """``dx[n, c, h, v] = sum over (o, ki, kj) hitting (h, v) of w[o, c, ki, kj] g[n, o, i, j]``."""
    n_img, chans, height, width = dx.shape
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


def _dw(x, g, stride, pad, dw, t):
    """``dw[o, c, ki, kj] = sum_{n, i, j} g[n, o, i, j] x[n, c, s i + ki - p, s j + kj - p]``."""
    n_out, chans, k, _ = dw.shape
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


_run = Runner((_forward, _dx, _dw))


def conv2d(x, w, stride, pad, out, *, workspace=None):
    """Arguments as :func:`refode.kernels.reference.conv2d.conv2d`; host or device arrays."""
    _run("forward", out.size, x, w, stride, pad, out)


def conv2d_vjp(x, w, g, stride, pad, dx, dw, *, workspace=None):
    """Arguments as :func:`refode.kernels.reference.conv2d.conv2d_vjp`."""
    g = _run.to_device(g)
    _run("dx", dx.size, w, g, stride, pad, dx)
    _run("dw", dw.size, x, g, stride, pad, dw)
