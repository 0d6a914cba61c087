"""Elementwise activations and their VJPs: the meaning of the ``activation`` kernels.

Every forward op is ``f(x, out)`` and every VJP is ``f_vjp(x, g, out)`` with
``out = f'(x) * g``. The VJPs take the *input* ``x`` (not the output) for all four
functions: one signature for all, and the input is what a caller that recomputes
activations in its backward pass keeps anyway. Arrays of any shape, float32 or float64;
``out`` has the shape and dtype of ``x`` and is overwritten.
"""
import numpy as np
from scipy.special import erf

__all__ = ["relu", "relu_vjp", "gelu", "gelu_vjp", "elu", "elu_vjp", "tanh", "tanh_vjp"]

#: 1 / sqrt(2), the scale inside the erf of the exact GELU.
INV_SQRT2 = 0.7071067811865476
#: 1 / sqrt(2 pi), the standard normal density at 0.
INV_SQRT_2PI = 0.3989422804014327


def relu(x, out):
    """``max(x, 0)``; NaN stays NaN (as in PyTorch)."""
    out[...] = np.where(x <= 0, 0, x)


def relu_vjp(x, g, out):
    """0 where ``x <= 0`` (PyTorch's choice at 0), else ``g``."""
    out[...] = np.where(x <= 0, 0, g)


def gelu(x, out):
    """Exact GELU ``x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`` (PyTorch's default, not tanh)."""
    out[...] = 0.5 * x * (1.0 + erf(x * INV_SQRT2))


def gelu_vjp(x, g, out):
    """``g (Phi(x) + x phi(x))`` with the standard normal cdf ``Phi`` and density ``phi``."""
    cdf = 0.5 * (1.0 + erf(x * INV_SQRT2))
    out[...] = g * (cdf + x * INV_SQRT_2PI * np.exp(-0.5 * x * x))


def elu(x, out):
    """ELU with alpha = 1: ``x`` for ``x > 0``, else ``expm1(x)``."""
    out[...] = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def elu_vjp(x, g, out):
    """``g`` for ``x > 0``, else ``g exp(x)``."""
    out[...] = np.where(x > 0, g, g * np.exp(np.minimum(x, 0)))


def tanh(x, out):
    """Hyperbolic tangent."""
    out[...] = np.tanh(x)


def tanh_vjp(x, g, out):
    """``g (1 - tanh(x)^2)``."""
    y = np.tanh(x)
    out[...] = g * (1.0 - y * y)
