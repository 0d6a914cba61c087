"""Batch norm followed by ReLU, ``r = relu(BN(x))``: the meaning of the ``bn_relu`` kernels.

The pair ``BN -> ReLU`` opens both halves of the conv rate unit (paper, section 5); the
fused kernels save a pass over memory and a temporary. They are defined as the
composition of :mod:`refode.kernels.reference.batchnorm` and
:func:`refode.kernels.reference.activation.relu` (batch statistics summed in float64,
the normalised value rounded to the output dtype, then ``max(y, 0)``). The VJP takes
the ReLU *output* ``r``: ``relu(y) <= 0`` exactly where ``y <= 0``.
"""
import numpy as np

from ...constants import BN_EPS as EPS
from . import activation, batchnorm as bn

__all__ = ["bn_relu", "bn_relu_eval", "bn_relu_vjp"]


def bn_relu(x, gamma, beta, r, mean, var, eps=EPS):
    """Training form: ``r = relu(batchnorm(x))`` and the batch statistics.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64
    gamma, beta : (C,) same dtype
    r : (N, C, H, W) same dtype; overwritten with ``max(BN(x), 0)``
    mean, var : (C,) same dtype; overwritten with the batch mean and unbiased variance
    eps : float
    """
    y = np.empty_like(r)
    bn.batchnorm(x, gamma, beta, y, mean, var, eps)
    activation.relu(y, r)


def bn_relu_eval(x, gamma, beta, mean, var, r, eps=EPS):
    """Evaluation form: ``r = relu(batchnorm_eval(x))`` with given statistics ``mean, var (C,)``."""
    y = np.empty_like(r)
    bn.batchnorm_eval(x, gamma, beta, mean, var, y, eps)
    activation.relu(y, r)


def bn_relu_vjp(x, gamma, r, dr, dx, dgamma, dbeta, eps=EPS):
    """VJP of the training form from the forward input ``x`` and output ``r``.

    Parameters
    ----------
    x : (N, C, H, W) the forward input
    gamma : (C,)
    r : (N, C, H, W) the forward output ``relu(BN(x))``
    dr : (N, C, H, W) cotangent of ``r``
    dx : (N, C, H, W) overwritten with ``dL/dx``
    dgamma, dbeta : (C,) overwritten
    eps : float
    """
    dy = np.empty_like(dr)
    activation.relu_vjp(r, dr, dy)
    bn.batchnorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps)
