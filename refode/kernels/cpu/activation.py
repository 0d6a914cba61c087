"""Numba CPU kernels of the activations (see :mod:`refode.kernels.reference.activation`).

Forward ``f(x, out)``, VJP ``f_vjp(x, g, out)`` taking the input ``x``. Arrays of any
shape, C-contiguous, float32 or float64. The scalar formulas are inlined into two
parallel loops over the flattened elements, one for the forward ops and one for the
VJPs, selected by an op code (a loop-invariant branch), called on flattened views:
two compilations per dtype instead of eight per dtype and dimension. Every element
is written once: deterministic for any thread count.
"""
import math

import numba

from ... import config

#: 1 / sqrt(2), the scale inside the erf of the exact GELU.
INV_SQRT2 = 0.7071067811865476
#: 1 / sqrt(2 pi), the standard normal density at 0.
INV_SQRT_2PI = 0.3989422804014327

#: op codes of the shared loops.
RELU, GELU, ELU, TANH = 0, 1, 2, 3

_SCALAR = dict(config.njit_options(parallel=False), inline="always")


@numba.njit(**_SCALAR)
def _forward(code, v):
    """The activation ``code`` at the scalar ``v``."""
    if code == RELU:
        return 0 if v <= 0 else v
    if code == GELU:
        return 0.5 * v * (1.0 + math.erf(v * INV_SQRT2))
    if code == ELU:
        return v if v > 0 else math.expm1(v)
    return math.tanh(v)


@numba.njit(**_SCALAR)
def _vjp(code, v, g):
    """``f'(v) g`` for the activation ``code``."""
    if code == RELU:
        return 0 if v <= 0 else g
    if code == GELU:
        cdf = 0.5 * (1.0 + math.erf(v * INV_SQRT2))
        return g * (cdf + v * INV_SQRT_2PI * math.exp(-0.5 * v * v))
    if code == ELU:
        return g if v > 0 else g * math.exp(v)
    y = math.tanh(v)
    return g * (1.0 - y * y)


@numba.njit(**config.njit_options(parallel=True))
def _map(code, x, out):
    """``out = f(x)`` elementwise over 1-D arrays, parallel."""
    for i in numba.prange(x.size):
        out[i] = _forward(code, x[i])


@numba.njit(**config.njit_options(parallel=True))
def _map_vjp(code, x, g, out):
    """``out = f'(x) g`` elementwise over 1-D arrays, parallel."""
    for i in numba.prange(x.size):
        out[i] = _vjp(code, x[i], g[i])


def relu(x, out):
    """``max(x, 0)``; NaN stays NaN."""
    _map(RELU, x.reshape(-1), out.reshape(-1))


def relu_vjp(x, g, out):
    """0 where ``x <= 0``, else ``g``."""
    _map_vjp(RELU, x.reshape(-1), g.reshape(-1), out.reshape(-1))


def gelu(x, out):
    """Exact GELU ``x (1 + erf(x / sqrt 2)) / 2``."""
    _map(GELU, x.reshape(-1), out.reshape(-1))


def gelu_vjp(x, g, out):
    """``g (Phi(x) + x phi(x))``."""
    _map_vjp(GELU, x.reshape(-1), g.reshape(-1), out.reshape(-1))


def elu(x, out):
    """ELU with alpha = 1: ``x`` for ``x > 0``, else ``expm1(x)``."""
    _map(ELU, x.reshape(-1), out.reshape(-1))


def elu_vjp(x, g, out):
    """``g`` for ``x > 0``, else ``g exp(x)``."""
    _map_vjp(ELU, x.reshape(-1), g.reshape(-1), out.reshape(-1))


def tanh(x, out):
    """Hyperbolic tangent."""
    _map(TANH, x.reshape(-1), out.reshape(-1))


def tanh_vjp(x, g, out):
    """``g (1 - tanh(x)^2)``."""
    _map_vjp(TANH, x.reshape(-1), g.reshape(-1), out.reshape(-1))
