"""2-D convolution (cross-correlation, as PyTorch's): the meaning of the ``conv2d`` kernels.

Layouts are PyTorch's: input ``(N, C, H, W)``, weight ``(O, C, k, k)``, output
``(N, O, Ho, Wo)`` with ``Ho = (H + 2 pad - k) // stride + 1`` (same for ``Wo``); zero
padding, no bias. refode uses ``k = 3, pad = 1`` and ``k = 1, pad = 0`` with stride 1 or 2.
"""
import numpy as np

from ...constants import BN_EPS as EPS
from . import bn_relu

__all__ = ["conv2d", "conv2d_vjp", "bn_relu_conv2d"]


def output_size(size, k, stride, pad):
    """Output length of a convolution over ``size`` input positions."""
    return (size + 2 * pad - k) // stride + 1


def _window(xpad, ki, kj, stride, ho, wo):
    """The input positions that kernel tap ``(ki, kj)`` sees, a strided view (N, C, ho, wo)."""
    rows = slice(ki, ki + stride * (ho - 1) + 1, stride)
    cols = slice(kj, kj + stride * (wo - 1) + 1, stride)
    return xpad[:, :, rows, cols]


def conv2d(x, w, stride, pad, out, *, workspace=None):
    """``out[n, o, i, j] = sum_{c, ki, kj} w[o, c, ki, kj] * xpad[n, c, s i + ki, s j + kj]``.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64
    w : (O, C, k, k) same dtype
    stride : int
    pad : int
        Zero padding on every side.
    out : (N, O, Ho, Wo) same dtype; overwritten
    workspace : ignored (accepted so all backends share one signature)
    """
    k = w.shape[2]
    ho, wo = out.shape[2], out.shape[3]
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out[...] = 0
    for ki in range(k):
        for kj in range(k):
            window = _window(xpad, ki, kj, stride, ho, wo)
            out += np.einsum("nchw,oc->nohw", window, w[:, :, ki, kj])


def conv2d_vjp(x, w, g, stride, pad, dx, dw, *, workspace=None):
    """Vector-Jacobian product of :func:`conv2d` with respect to ``x`` and ``w``.

    Parameters
    ----------
    x : (N, C, H, W)
    w : (O, C, k, k)
    g : (N, O, Ho, Wo) cotangent of the output
    stride, pad : int
    dx : (N, C, H, W); overwritten with the cotangent of ``x``
    dw : (O, C, k, k); overwritten with the cotangent of ``w``
    workspace : ignored
    """
    k = w.shape[2]
    n_img, chans, height, width = x.shape
    ho, wo = g.shape[2], g.shape[3]
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxpad = np.zeros_like(xpad)
    for ki in range(k):
        for kj in range(k):
            dw[:, :, ki, kj] = np.einsum("nohw,nchw->oc", g, _window(xpad, ki, kj, stride, ho, wo))
            dx_window = _window(dxpad, ki, kj, stride, ho, wo)
            dx_window += np.einsum("nohw,oc->nchw", g, w[:, :, ki, kj])
    dx[...] = dxpad[:, :, pad : pad + height, pad : pad + width]


def bn_relu_conv2d(x, gamma, beta, mean, var, w, stride, pad, out, eps=EPS, *, workspace=None):
    """``conv2d(relu(batchnorm_eval(x)), w)``: the evaluation-mode pre-activation conv unit.

    :func:`refode.kernels.reference.bn_relu.bn_relu_eval` of ``x`` with the statistics
    ``mean, var (C,)``, then :func:`conv2d` of the result (the zero padding comes after the
    ReLU). Arguments as those two; ``workspace`` is ignored.
    """
    r = np.empty_like(x)
    bn_relu.bn_relu_eval(x, gamma, beta, mean, var, r, eps)
    conv2d(r, w, stride, pad, out)

