"""CUDA kernels of the coefficient combinations: ``combine`` and the theta(t) assembly.

:func:`combine` (see :func:`refode.kernels.reference.combine.combine`): one thread per
output element, summing the stored entries of its row in order into a float64 register,
bitwise the CPU kernel's arithmetic (``refode.kernels.cpu.combine._chunk``).

:func:`theta_assemble` is the device twin of
:func:`refode.integrate.weights.theta_at_support`, the weights at one stage,
``acc = w_0 c[k_0]; acc = acc + w_q c[k_q]`` over the support in the coefficients' own
dtype (no float64 accumulation; the weights are rounded to that dtype first, as NumPy
does with a Python float times a float32 array); :func:`theta_accumulate` is its VJP,
``grads[k_q] += (scale w_q) thetabar`` (the integrator's ``_accumulate``). Both run one
thread per element, the support's terms in order. They are not kernels of
:data:`refode.kernels.OPS` (their definition is ``theta_at_support``), so they are not
in ``__all__``. Bitwise NumPy's arithmetic in the simulator; on a GPU up to fused
multiply-adds (see :mod:`refode.kernels.cuda`).
"""
import numpy as np

from . import launch, specialise

__all__ = ["combine"]

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile (the numba.cuda module).
cuda = None


def _combine_kernel(n, indptr, indices, data, src, out):
    k = cuda.grid(1)
    if k < n:
        j, p = divmod(k, src.shape[1])
        acc = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            acc += data[q] * src[indices[q], p]
        out[j, p] = acc


def _assemble_kernel(n, coefficients, indices, weights, n_terms, out):
    p = cuda.grid(1)
    if p < n:
        if n_terms == 0:
            out[p] = 0
        else:
            acc = weights[0] * coefficients[indices[0], p]
            for q in range(1, n_terms):
                acc = acc + weights[q] * coefficients[indices[q], p]
            out[p] = acc


def _accumulate_kernel(n, indices, weights, n_terms, thetabar, grads):
    p = cuda.grid(1)
    if p < n:
        for q in range(n_terms):
            grads[indices[q], p] = grads[indices[q], p] + weights[q] * thetabar[p]


def _kernels():
    """The kernels above, compiled on first use (once)."""
    return specialise((_combine_kernel, _assemble_kernel, _accumulate_kernel))


def combine(indptr, indices, data, src, out):
    """Arguments as :func:`refode.kernels.reference.combine.combine`; host or device arrays."""
    launch(_kernels().combine_kernel, out.size, indptr, indices, data, src, out)


def _support(indices, weights, dtype, scale=None):
    """The support as arrays: int64 indices, weights in ``dtype`` (a dummy entry when empty).

    Device arrays pass through (they must already be int64 and ``dtype``); host sequences
    are converted (``scale * w`` in float64 first, as Python floats multiply).
    """
    if hasattr(weights, "copy_to_host"):
        return indices, weights, len(indices)
    ws = [float(w) if scale is None else scale * float(w) for w in weights]
    n = len(ws)
    return (np.asarray(indices if n else [0], dtype=np.int64),
            np.asarray(ws if n else [0.0], dtype=dtype), n)


def _columns(a, leading):
    """``a`` as (leading, rest), a view of a C-contiguous host or device array."""
    return a.reshape(leading, a.size // leading if leading else 0)


def theta_assemble(coefficients, indices, weights, out):
    """``out = sum_q weights[q] * coefficients[indices[q]]``, as ``theta_at_support``.

    Parameters
    ----------
    coefficients : (K, *shape) float32 or float64, C-contiguous, host or device
        One weight's coefficients (or several weights' stacked along the last axes).
    indices : sequence of int (increasing, in ``[0, K)``), or an int64 device array
        The support ``k_0, k_1, ...``; empty for a depth where every ``phi_k`` vanishes.
    weights : sequence of Python float, or a device array of the coefficients' dtype
        ``phi_{k_q}(t)``, same length (a device array's entries must already be rounded
        to that dtype: ``np.asarray(weights, dtype)``).
    out : (*shape) same dtype, C-contiguous, host or device; overwritten (zeros for an
        empty support)
    """
    flat = _columns(out, 1)[0]
    idx, ws, n_terms = _support(indices, weights, coefficients.dtype)
    launch(_kernels().assemble_kernel, flat.size, _columns(coefficients, coefficients.shape[0]),
           idx, ws, n_terms, flat)


def theta_accumulate(grads, indices, weights, scale, thetabar):
    """``grads[indices[q]] += (scale * weights[q]) * thetabar`` for each ``q``, in place.

    The VJP of :func:`theta_assemble` (``refode.integrate.adjoint._accumulate`` with
    ``sign = scale``): the factor ``scale * w_q`` is formed in float64, rounded to the
    gradients' dtype, multiplied by ``thetabar`` and added, in that dtype.

    Parameters
    ----------
    grads : (K, *shape) float32 or float64, C-contiguous, host or device; updated
    indices, weights : the support, as for :func:`theta_assemble` (host sequences here:
        ``scale`` is applied to them; pass device ``weights`` already scaled and rounded)
    scale : float
    thetabar : (*shape) same dtype, host or device
    """
    flat = _columns(thetabar, 1)[0]
    idx, ws, n_terms = _support(indices, weights, grads.dtype, float(scale))
    launch(_kernels().accumulate_kernel, flat.size, idx, ws, n_terms, flat,
           _columns(grads, grads.shape[0]))
