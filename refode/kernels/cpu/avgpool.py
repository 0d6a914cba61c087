"""Numba CPU kernels of ``avgpool`` (see :mod:`refode.kernels.reference.avgpool`).

Serial loops over ``(n, c)`` planes: the pooled tensor is small (the head of the
network, one read of the input), and a serial kernel compiles several times faster
than a parallel one. The plane bodies are shared with CUDA (one thread per plane).
"""
from .._compile import Runner

__all__ = ["avgpool", "avgpool_vjp"]


def _pool(x, out, nc):
    """Task ``nc``: ``out[n, c]`` = the mean of ``x[n, c]``, summed in float64 in row order."""
    n, c = divmod(nc, x.shape[1])
    height, width = x.shape[2], x.shape[3]
    acc = 0.0
    for h in range(height):
        for v in range(width):
            acc += x[n, c, h, v]
    out[n, c] = acc / (height * width)


def _spread(g, dx, nc):
    """Task ``nc``: ``dx[n, c, :, :] = g[n, c] / (H W)``."""
    n, c = divmod(nc, dx.shape[1])
    height, width = dx.shape[2], dx.shape[3]
    val = g[n, c] / (height * width)
    for h in range(height):
        for v in range(width):
            dx[n, c, h, v] = val


BODIES = (_pool, _spread)


def drivers(run):
    """The kernels of :data:`__all__`, running the bodies with ``run``."""

    def avgpool(x, out):
        """``out[n, c] = mean of x[n, c]``; arguments as the reference ``avgpool``."""
        run("pool", out.size, x, out)

    def avgpool_vjp(g, dx):
        """``dx[n, c, h, w] = g[n, c] / (H W)``; arguments as the reference ``avgpool_vjp``."""
        run("spread", g.size, g, dx)

    return avgpool, avgpool_vjp


avgpool, avgpool_vjp = drivers(Runner(BODIES, parallel=False))
