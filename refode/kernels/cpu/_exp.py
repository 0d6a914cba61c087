"""``exp`` and ``expm1`` of non-positive numbers in straight-line float64 code that LLVM
vectorises: the transcendental part of the CPU ELU (:mod:`refode.kernels.cpu.activation`).

NumPy's ``expm1`` and ``exp`` are vectorised on some machines only (AVX-512 here; on AVX2
NumPy's float64 ``expm1`` is libm's scalar one, 10 ns an element, and Numba calls libm's
scalar functions too), and their last bit differs between those machines. These are the
textbook method (the reduction of fdlibm's ``expm1``), written without branches or
calls:

    x = k ln 2 + r,  |r| <= ln(2) / 2,  k = round(x / ln 2)
    expm1(r) = r + r^2 (1/2! + r (1/3! + ... + r / 13!))      (Taylor, 2^-57 relative)
    expm1(x) = 2^k expm1(r) + (2^k - 1),   exp(x) = 2^k (1 + expm1(r))

``ln 2`` in two parts (``k ln2_hi`` exact), the rounding of ``r`` carried as a correction
``c``, ``2^k`` built from its bits (the ``1.5 2^52`` shifter, no float-to-integer
conversion, which AVX2 lacks for 64-bit lanes). Float32 evaluates in float64 and rounds
once at the end. The float64 error is at most 0.79 (``expm1``) and 0.81 (``exp``) units in
the last place against 80-bit long double (NumPy's: 0.76 and 0.50; 800,000 points
over the domain); every operation is an IEEE operation without contraction (fastmath
off), so the bits are the same on every machine and vector width.

Domain: ``x <= 0`` (ELU's ``min(x, 0)``) or NaN, returned as is; ``expm1`` is ``-1``
below :data:`EXPM1_FLOOR`, ``exp`` is 0 below :data:`EXP_FLOOR`; ``-0.0`` gives ``-0.0``
and 1.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: ``ln 2`` in two parts: ``LN2_HI`` has 32 trailing zero bits (``k LN2_HI`` is exact for
#: ``|k| < 2^20``), ``LN2_HI + LN2_LO`` is ``ln 2`` to 2^-86 (fdlibm's constants).
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
#: ``1.5 2^52``: ``t + SHIFTER`` rounds ``t`` to an integer held in the low mantissa bits.
SHIFTER = 6755399441055744.0
#: below this ``expm1(x)`` rounds to -1 in float64 (``e^x < 2^-54``; -37.43 is the edge).
EXPM1_FLOOR = -40.0
#: below this ``exp(x)`` rounds to 0 (``e^x < 2^-1075``; -745.13 is the edge).
EXP_FLOOR = -746.0
#: ``exp`` of results below 2^-1022 (subnormal) scales by ``2^SUBNORMAL_SHIFT`` first.
SUBNORMAL_SHIFT = 64
#: Taylor coefficients ``1/2!, 1/3!, ..., 1/13!`` of ``(expm1(r) - r) / r^2``.
T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13 = (
    1.0 / float(np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(2, 14))


@intrinsic
def _bits(typingctx, value):
    """The bits of a float64 as an int64 (a bitcast)."""
    if value != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _float(typingctx, value):
    """The float64 whose bits are an int64 (a bitcast)."""
    if value != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(inline="always")
def _reduced(x):
    """``(k, expm1(r))`` for ``x = k ln 2 + r``, ``k`` an int64, ``expm1(r)`` corrected for
    the rounding of ``r``."""
    t = x * INV_LN2 + SHIFTER
    kf = t - SHIFTER  # round(x / ln 2), exactly an integer
    hi = x - kf * LN2_HI
    lo = kf * LN2_LO
    r = hi - lo
    c = (hi - r) - lo  # what rounding r lost
    q = T2 + r * (T3 + r * (T4 + r * (T5 + r * (T6 + r * (T7 + r * (T8 + r * (
        T9 + r * (T10 + r * (T11 + r * (T12 + r * T13))))))))))
    # expm1(r + c) = r + (r^2 q + c (1 + r)) to first order in c, one rounding at the end
    return _bits(t) - _bits(SHIFTER), r + (r * r * q + c * (1.0 + r))


@numba.njit(inline="always")
def expm1_nonpositive(v):
    """``expm1(v)`` for float64 ``v <= 0`` (NaN passes through)."""
    x = v if v > EXPM1_FLOOR else EXPM1_FLOOR
    k, p = _reduced(x)
    scale = _float((k + 1023) << 52)
    y = scale * p + (scale - 1.0)
    if v != v or v == 0:
        y = v
    return y


@numba.njit(inline="always")
def exp_nonpositive(v):
    """``exp(v)`` for float64 ``v <= 0`` (NaN passes through)."""
    x = v if v > EXP_FLOOR else EXP_FLOOR
    k, p = _reduced(x)
    normal = k >= -1022
    shift = 0 if normal else SUBNORMAL_SHIFT
    scale = _float((k + shift + 1023) << 52)
    y = scale + scale * p
    if not normal:
        y = y * _float(np.int64(1023 - SUBNORMAL_SHIFT) << 52)
    if v != v:
        y = v
    return y
