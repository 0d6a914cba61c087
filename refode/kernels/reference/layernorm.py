"""Layer normalisation over the last axis: the meaning of the ``layernorm`` kernels.

Sums run in float64 (complex128 for complex-step checks); the mean and the biased
variance of each row are recomputed by the VJP from ``x``.
"""
import numpy as np

from ...constants import LN_EPS as EPS

__all__ = ["layernorm", "layernorm_vjp"]


def _work(x):
    return x.astype(np.promote_types(x.dtype, np.float64))


def _normalised(x, eps):
    """``(xhat, rstd)`` of float64 ``x`` over its last axis (``rstd`` keeps that axis)."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    rstd = 1.0 / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + eps)
    return centred * rstd, rstd


def layernorm(x, gamma, beta, y, eps=EPS):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta`` over the last axis.

    Parameters
    ----------
    x : (..., D) float32 or float64
    gamma, beta : (D,) same dtype
    y : (..., D) same dtype; overwritten
    eps : float
    """
    xhat, _ = _normalised(_work(x), eps)
    y[...] = gamma * xhat + beta


def layernorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """VJP of :func:`layernorm`.

    Parameters
    ----------
    x : (..., D) the forward input
    gamma : (D,)
    dy : (..., D) cotangent of ``y``
    dx : (..., D) overwritten
    dgamma, dbeta : (D,) overwritten (sums over all leading axes)
    eps : float
    """
    xhat, rstd = _normalised(_work(x), eps)
    dyw = _work(dy)
    g = dyw * gamma
    mean_g = g.mean(axis=-1, keepdims=True)
    mean_gx = (g * xhat).mean(axis=-1, keepdims=True)
    dx[...] = rstd * (g - mean_g - xhat * mean_gx)
    lead = tuple(range(x.ndim - 1))
    dgamma[...] = (dyw * xhat).sum(axis=lead)
    dbeta[...] = dyw.sum(axis=lead)
