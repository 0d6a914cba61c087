"""Sparse linear combination of rows: the meaning of the ``combine`` kernel."""
import numpy as np

__all__ = ["combine"]


def combine(indptr, indices, data, src, out):
    """``out[j] = sum_q data[q] * src[indices[q]]`` over the stored entries ``q`` of row ``j``.

    The small matrix is in CSR form (``indptr`` of length ``n_out + 1``); sums run
    over the stored entries in their order, accumulated in float64, then cast to
    ``out.dtype``. This is how coefficient arrays change basis (projection,
    interpolation, refinement). It is not theta(t): the weights at a depth are
    :func:`refode.theta` (:mod:`refode.integrate.weights`), which sums
    ``w_0 c[k_0] + w_1 c[k_1] + ...`` in the coefficients' own dtype, as the integrator
    does; this kernel accumulates in float64 and differs from it in float32.

    Parameters
    ----------
    indptr : (n_out + 1,) int64
    indices : (nnz,) int64, row indices into ``src``
    data : (nnz,) float64
    src : (n_src, P) float32 or float64
    out : (n_out, P) same dtype as ``src``; overwritten
    """
    for j in range(out.shape[0]):
        acc = np.zeros(src.shape[1], dtype=np.float64)
        for q in range(indptr[j], indptr[j + 1]):
            acc += data[q] * src[indices[q]].astype(np.float64)
        out[j] = acc
