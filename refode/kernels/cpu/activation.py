"""Numba CPU kernels of the activations (see :mod:`refode.kernels.reference.activation`).

Forward ``f(x, out)``, VJP ``f_vjp(x, g, out)`` taking the input ``x``. Arrays of any
shape, C-contiguous, float32 or float64. The scalar formulas (:func:`_forward`,
:func:`_vjp`, shared with the CUDA backend) are inlined into two parallel loops over
the flattened elements, selected by an op code (a loop-invariant branch): two
compilations per dtype instead of eight per dtype and dimension. Every element is
written once: deterministic for any thread count.

ELU on the CPU (issue 11): Numba calls libm's scalar ``expm1``/``exp`` (about 5 ns an
element, no vectorisation without Intel's SVML), while NumPy's ufuncs have vectorised
versions (AVX-512: 4x faster for float64, 14x for float32 here). The CPU ``elu`` and
``elu_vjp`` therefore evaluate the transcendental part with the NumPy ufunc on
``min(x, 0)``, the expression of the definition, into the output, and a parallel Numba
loop selects per element (:func:`_keep_positive`, :func:`_keep_positive_vjp`): bitwise
the NumPy definition. The ufunc runs on contiguous chunks of :data:`UFUNC_BLOCK`-element
blocks, one per thread (:func:`refode.kernels._threads.run_tasks`; NumPy releases the GIL
inside its loops): without the chunks a single thread did the transcendentals, 26% of a
W2 step on an AVX2 machine, where NumPy's float64 ``expm1`` is libm's scalar one (10 ns
an element). The chunks start at multiples of the block from the array's start, so every
element is computed by the same (vector or scalar) code path whatever the thread count.
CUDA keeps the scalar formulas of :func:`_forward` and :func:`_vjp`.
"""
import math

import numpy as np

from .._compile import Runner
from .._threads import run_tasks
from ..reference import activation as reference
from ..reference.activation import INV_SQRT2, INV_SQRT_2PI

#: elements per task of the chunked NumPy ufuncs (a multiple of every vector width, and
#: 512 bytes or more: chunks start on the same vector boundaries as the whole array).
UFUNC_BLOCK = 64

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


def _keep_positive(x, out, i):
    """Task ``i``: ``out[i] = x[i]`` where ``x[i] > 0`` (``out`` holds ``expm1(min(x, 0))``)."""
    if x[i] > 0:
        out[i] = x[i]


def _keep_positive_vjp(x, g, out, i):
    """Task ``i``: ``out[i] = g[i]`` where ``x[i] > 0``, else ``g[i] out[i]`` (``out`` holds
    ``exp(min(x, 0))``)."""
    out[i] = g[i] if x[i] > 0 else g[i] * out[i]


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
_select = Runner((_keep_positive, _keep_positive_vjp))


def _unaliased(flat, *inputs):
    """``flat``, or a new array of its shape if it may overlap one of ``inputs`` (an
    in-place call: the inputs are read after ``flat`` is first written)."""
    if any(np.may_share_memory(flat, a) for a in inputs):
        return np.empty_like(flat)
    return flat


def _ufunc_of_negative_part(lo, hi, ufunc, x, e):
    """Blocks ``lo .. hi - 1`` of :data:`UFUNC_BLOCK` elements: ``e = ufunc(min(x, 0))``."""
    part = slice(lo * UFUNC_BLOCK, hi * UFUNC_BLOCK)
    ufunc(np.minimum(x[part], 0, out=e[part]), out=e[part])


def _negative_part(ufunc, x, e):
    run_tasks(_ufunc_of_negative_part, -(-x.size // UFUNC_BLOCK), (ufunc, x, e))


def elu(x, out):
    """ELU with alpha = 1 (see :func:`refode.kernels.reference.activation.elu`): NumPy's
    vectorised ``expm1`` of ``min(x, 0)``, then ``x`` where ``x > 0`` (module docstring)."""
    flat_x, flat = x.reshape(-1), out.reshape(-1)
    e = _unaliased(flat, flat_x)
    _negative_part(np.expm1, flat_x, e)
    _select("keep_positive", e.size, flat_x, e)
    if e is not flat:
        flat[...] = e


def elu_vjp(x, g, out):
    """``g`` for ``x > 0``, else ``g exp(x)`` (see the reference ``elu_vjp``): NumPy's
    vectorised ``exp`` of ``min(x, 0)``, then the selection (module docstring)."""
    flat_x, flat_g, flat = x.reshape(-1), g.reshape(-1), out.reshape(-1)
    e = _unaliased(flat, flat_x, flat_g)
    _negative_part(np.exp, flat_x, e)
    _select("keep_positive_vjp", e.size, flat_x, flat_g, e)
    if e is not flat:
        flat[...] = e
