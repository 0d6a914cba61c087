"""Numba CPU kernels of ``avgpool`` (see :mod:`refode.kernels.reference.avgpool`).

Serial loops: the pooled tensor is small (the head of the network, one read of the
input), and a serial kernel compiles several times faster than a parallel one.
"""
import numba

from ... import config


@numba.njit(**config.njit_options(parallel=False))
def avgpool(x, out):
    """``out[n, c] = mean of x[n, c]``, summed in float64 in row order.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64, C-contiguous
    out : (N, C) same dtype; overwritten
    """
    n_img, chans, height, width = x.shape
    area = height * width
    for nc in range(n_img * chans):
        n, c = divmod(nc, chans)
        acc = 0.0
        for h in range(height):
            for v in range(width):
                acc += x[n, c, h, v]
        out[n, c] = acc / area


@numba.njit(**config.njit_options(parallel=False))
def avgpool_vjp(g, dx):
    """``dx[n, c, h, w] = g[n, c] / (H W)``.

    Parameters
    ----------
    g : (N, C)
    dx : (N, C, H, W); overwritten
    """
    n_img, chans, height, width = dx.shape
    area = height * width
    for nc in range(n_img * chans):
        n, c = divmod(nc, chans)
        val = g[n, c] / area
        for h in range(height):
            for v in range(width):
                dx[n, c, h, v] = val
