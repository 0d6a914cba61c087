"""Numba CPU kernels of the activations (see :mod:`refode.kernels.reference.activation`).

Forward ``f(x, out)``, VJP ``f_vjp(x, g, out)`` taking the input ``x``. Arrays of any
shape, C-contiguous, float32 or float64. The scalar formulas (:func:`_forward`,
:func:`_vjp`, shared with the CUDA backend) are inlined into two parallel loops over
the flattened elements, selected by an op code (a loop-invariant branch): two
compilations per dtype instead of eight per dtype and dimension. Every element is
written once: deterministic for any thread count.

ELU on the CPU (issue 11): libm's scalar ``expm1``/``exp`` (which Numba calls, and NumPy
too on machines without a vectorised version, 5-10 ns an element) made the ELU a quarter
of a W2 step. The CPU ``elu`` and ``elu_vjp`` evaluate the definition's expression
with :func:`refode.kernels.cpu._exp.expm1_nonpositive` and ``exp_nonpositive`` of
``min(x, 0)`` instead, straight-line float64 code that LLVM vectorises, within one unit
in the last place of the exact values and with the same bits on every machine (NumPy's
own last bit depends on the machine's SIMD extensions), in one parallel loop
(:func:`_elu`, :func:`_elu_vjp`). The float32 kernels round the float64 result once, as
the ufunc's value is rounded, then multiply in float32 as the definition does. CUDA
keeps the scalar formulas of :func:`_forward` and :func:`_vjp`.
"""
import math

import numpy as np

from .._compile import Runner
from ._exp import exp_nonpositive, expm1_nonpositive
from ..reference import activation as reference
from ..reference.activation import INV_SQRT2, INV_SQRT_2PI

#: op codes of the shared loops, by activation name.
CODES = {"relu": 0, "gelu": 1, "elu": 2, "tanh": 3}
RELU, GELU, ELU, TANH = CODES.values()


def _forward(code, v):
    """The activation ``code`` at the scalar ``v``."""
    if code == RELU:
        return 0 if v <= 0 else v
    if code == GELU:
        return 0.5 * v * (1.0 + math.erf(v * INV_SQRT2))
    if code == ELU:
        return v if v > 0 else math.expm1(v)
    return math.tanh(v)


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


def _map(code, x, out, i):
    """Task ``i``: ``out[i] = f(x[i])`` over 1-D arrays."""
    out[i] = _forward(code, x[i])


def _map_vjp(code, x, g, out, i):
    """Task ``i``: ``out[i] = f'(x[i]) g[i]`` over 1-D arrays."""
    out[i] = _vjp(code, x[i], g[i])


def _elu(x, out, i):
    """Task ``i``: ``out[i] = x[i]`` where ``x[i] > 0``, else ``expm1(min(x[i], 0))``."""
    v = x[i]
    out[i] = v if v > 0 else expm1_nonpositive(np.float64(v))


def _elu_vjp(x, g, out, i):
    """Task ``i``: ``out[i] = g[i]`` where ``x[i] > 0``, else ``g[i] exp(min(x[i], 0))``
    (the exponential rounded to the arrays' dtype first, as the definition's)."""
    v = x[i]
    if v > 0:
        out[i] = g[i]
    else:
        gi = g[i]
        out[i] = exp_nonpositive(np.float64(v))
        out[i] = gi * out[i]


BODIES = (_forward, _vjp, _map, _map_vjp)
__all__ = [f for name in CODES for f in (name, f"{name}_vjp")]


def _pair(run, name):
    """``name(x, out)`` and ``name_vjp(x, g, out)``, running the bodies with ``run``."""
    code = CODES[name]

    def forward(x, out):
        run("map", x.size, code, x.reshape(-1), out.reshape(-1))

    def vjp(x, g, out):
        run("map_vjp", x.size, code, x.reshape(-1), g.reshape(-1), out.reshape(-1))

    for fn, fn_name in ((forward, name), (vjp, f"{name}_vjp")):
        fn.__name__ = fn.__qualname__ = fn_name
        fn.__doc__ = getattr(reference, fn_name).__doc__
    return forward, vjp


def drivers(run):
    """The kernels of :data:`__all__`, in that order, running the bodies with ``run``."""
    return [fn for name in CODES for fn in _pair(run, name)]


relu, relu_vjp, gelu, gelu_vjp, _, _, tanh, tanh_vjp = drivers(Runner(BODIES))
_run_elu = Runner((_elu, _elu_vjp))


def elu(x, out):
    """ELU with alpha = 1 (see :func:`refode.kernels.reference.activation.elu`): ``x`` where
    ``x > 0``, else the vectorised ``expm1`` of ``min(x, 0)`` (module docstring)."""
    _run_elu("elu", x.size, x.reshape(-1), out.reshape(-1))


def elu_vjp(x, g, out):
    """``g`` for ``x > 0``, else ``g exp(x)`` (see the reference ``elu_vjp``; the vectorised
    ``exp``, module docstring)."""
    _run_elu("elu_vjp", x.size, x.reshape(-1), g.reshape(-1), out.reshape(-1))
