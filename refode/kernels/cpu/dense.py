"""Numba CPU kernels of ``dense`` (see :mod:`refode.kernels.reference.dense`).

The products go through ``run.matmul``: on the CPU single BLAS GEMMs called from
Python (outside any parallel region), on CUDA the
tiled shared-memory GEMM of refode.kernels.cuda._gemm. The bias is
added and its cotangent summed by bodies shared with CUDA, in a fixed order (rows of
``g`` added in order, in the output dtype), so the results are bitwise those of the
NumPy definition for any thread count.
"""
from .._compile import Runner

__all__ = ["dense", "dense_vjp"]


def _add_bias(b, out, m):
    """Task ``m``: ``out[m] += b``."""
    for o in range(out.shape[1]):
        out[m, o] += b[o]


def _sum_column(g, lanes, db, j):
    """Task ``j``: ``db[o] = sum_m g[m, o]`` for the ``lanes`` columns ``o`` from ``j *
    lanes``, rows added in order (a row of lanes at a time: contiguous, vectorised)."""
    lo = j * lanes
    hi = min(lo + lanes, db.shape[0])
    for o in range(lo, hi):
        db[o] = 0
    for m in range(g.shape[0]):
        for o in range(lo, hi):
            db[o] += g[m, o]


BODIES = (_add_bias, _sum_column)


def drivers(run):
    """The kernels of :data:`__all__`, running the bodies and products with ``run``."""

    def dense(x, w, b, out):
        """``out = x @ w.T + b``; arguments as the reference ``dense`` (``out`` C-contiguous)."""
        run.matmul(x, w, out, tb=True)
        if b is not None:
            run("add_bias", out.shape[0], b, out)

    def dense_vjp(x, w, g, dx, dw, db):
        """Cotangents of ``x``, ``w`` and ``b``; arguments as the reference ``dense_vjp``."""
        run.matmul(g, w, dx)
        run.matmul(g, x, dw, ta=True)
        if db is not None:
            lanes = run.LANES
            run("sum_column", -(-db.shape[0] // lanes), g, lanes, db)

    return dense, dense_vjp


dense, dense_vjp = drivers(Runner(BODIES))
