"""Global average pooling: the meaning of the ``avgpool`` kernels."""

__all__ = ["avgpool", "avgpool_vjp"]


def avgpool(x, out):
    """``out[n, c] = mean over (h, w) of x[n, c, h, w]``.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64
    out : (N, C) same dtype; overwritten
    """
    out[...] = x.mean(axis=(2, 3))


def avgpool_vjp(g, dx):
    """Vector-Jacobian product of :func:`avgpool`: ``dx[n, c, h, w] = g[n, c] / (H W)``.

    Parameters
    ----------
    g : (N, C) cotangent of the output
    dx : (N, C, H, W); overwritten (its shape gives ``H`` and ``W``)
    """
    dx[...] = (g / (dx.shape[2] * dx.shape[3]))[:, :, None, None]
