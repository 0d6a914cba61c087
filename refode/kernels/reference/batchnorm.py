"""Batch normalisation over (N, C, H, W), per channel: the meaning of the ``batchnorm`` kernels.

Training form (:func:`batchnorm`) normalises with the batch mean and the biased
batch variance and reports the batch mean and the *unbiased* variance (what
PyTorch feeds into its running variance). Evaluation form (:func:`batchnorm_eval`)
normalises with given statistics; in refode those are running statistics that are
functions of depth, so its VJP also returns their gradients.

Sums run in float64 (complex128 for complex input, used by complex-step checks);
results are cast to the dtype of the outputs. Training needs ``N * H * W >= 2``.
"""
import numpy as np

from ...constants import BN_EPS as EPS

__all__ = ["batchnorm", "batchnorm_eval", "batchnorm_vjp", "batchnorm_eval_vjp"]

#: the axes reduced per channel in NCHW.
AXES = (0, 2, 3)


def _work(x):
    return x.astype(np.promote_types(x.dtype, np.float64))


def _per_channel(v):
    return v.reshape(1, -1, 1, 1)


def _batch_stats(x):
    """Batch mean, biased variance and count per channel of float64 ``x``."""
    n = x.size // x.shape[1]
    mean = x.mean(axis=AXES)
    var = ((x - _per_channel(mean)) ** 2).mean(axis=AXES)
    return mean, var, n


def batchnorm(x, gamma, beta, y, mean, var, eps=EPS):
    """Training form: ``y = gamma * (x - mu) / sqrt(var_b + eps) + beta`` with batch statistics.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64
    gamma, beta : (C,) same dtype, affine scale and shift
    y : (N, C, H, W) same dtype; overwritten with the normalised output
    mean : (C,) same dtype; overwritten with the batch mean
    var : (C,) same dtype; overwritten with the unbiased batch variance (divided by ``n - 1``)
    eps : float
    """
    xw = _work(x)
    mu, var_b, n = _batch_stats(xw)
    inv = 1.0 / np.sqrt(var_b + eps)
    y[...] = _per_channel(gamma * inv) * (xw - _per_channel(mu)) + _per_channel(beta)
    mean[...] = mu
    var[...] = var_b * (n / (n - 1))


def batchnorm_eval(x, gamma, beta, mean, var, y, eps=EPS):
    """Evaluation form: ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with given statistics.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64
    gamma, beta, mean, var : (C,) same dtype
    y : (N, C, H, W) same dtype; overwritten
    eps : float
    """
    inv = 1.0 / np.sqrt(_work(var) + eps)
    y[...] = _per_channel(gamma * inv) * (_work(x) - _per_channel(mean)) + _per_channel(beta)


def batchnorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """VJP of the training form, through the batch statistics (recomputed from ``x``).

    Parameters
    ----------
    x : (N, C, H, W) the forward input
    gamma : (C,)
    dy : (N, C, H, W) cotangent of ``y`` (the statistics outputs are not differentiated)
    dx : (N, C, H, W) overwritten with ``dL/dx``
    dgamma, dbeta : (C,) overwritten
    eps : float
    """
    xw, dyw = _work(x), _work(dy)
    mu, var_b, n = _batch_stats(xw)
    inv = 1.0 / np.sqrt(var_b + eps)
    xhat = (xw - _per_channel(mu)) * _per_channel(inv)
    sum_dy = dyw.sum(axis=AXES)
    sum_dy_xhat = (dyw * xhat).sum(axis=AXES)
    scale = _per_channel(gamma * inv / n)
    dx[...] = scale * (n * dyw - _per_channel(sum_dy) - xhat * _per_channel(sum_dy_xhat))
    dgamma[...] = sum_dy_xhat
    dbeta[...] = sum_dy


def batchnorm_eval_vjp(x, gamma, mean, var, dy, dx, dgamma, dbeta, dmean, dvar, eps=EPS):
    """VJP of the evaluation form with respect to ``x``, ``gamma``, ``beta``, ``mean`` and ``var``.

    Parameters
    ----------
    x : (N, C, H, W)
    gamma, mean, var : (C,)
    dy : (N, C, H, W) cotangent of ``y``
    dx : (N, C, H, W) overwritten
    dgamma, dbeta, dmean, dvar : (C,) overwritten
    eps : float
    """
    xw, dyw = _work(x), _work(dy)
    inv = 1.0 / np.sqrt(_work(var) + eps)
    xhat = (xw - _per_channel(mean)) * _per_channel(inv)
    sum_dy = dyw.sum(axis=AXES)
    sum_dy_xhat = (dyw * xhat).sum(axis=AXES)
    dx[...] = dyw * _per_channel(gamma * inv)
    dgamma[...] = sum_dy_xhat
    dbeta[...] = sum_dy
    dmean[...] = -gamma * inv * sum_dy
    dvar[...] = -0.5 * gamma * inv * inv * sum_dy_xhat
