"""Numba CPU kernels of ``embedding`` (see :mod:`refode.kernels.reference.embedding`).

The lookup is parallel over positions; the scatter-add VJP is parallel over column
chunks of ``dweight`` (``CHUNK`` columns a task on the CPU, one on CUDA), each task
adding the positions in row-major order, so the result is bitwise that of the
sequential definition for any thread count. Both bodies are shared with CUDA.
"""
from .._compile import Runner

__all__ = ["embedding", "embedding_vjp"]

#: columns of ``dweight`` handled by one parallel task of the VJP.
CHUNK = 64


def _lookup(ids, weight, out, r):
    """Task ``r``: ``out[r] = weight[ids[r]]``."""
    for j in range(out.shape[1]):
        out[r, j] = weight[ids[r], j]


def _scatter(ids, dout, chunk, dweight, c):
    """Task ``c``: columns ``c chunk ...`` of ``dweight``, zeroed then added row by row."""
    width = dweight.shape[1]
    lo = c * chunk
    hi = min(width, lo + chunk)
    for v in range(dweight.shape[0]):
        for j in range(lo, hi):
            dweight[v, j] = 0.0
    for r in range(ids.shape[0]):
        for j in range(lo, hi):
            dweight[ids[r], j] += dout[r, j]


BODIES = (_lookup, _scatter)


def drivers(run, chunk=CHUNK):
    """The kernels of :data:`__all__`, running the bodies with ``run``, ``chunk`` columns a task."""

    def embedding(ids, weight, out):
        """Arguments as :func:`refode.kernels.reference.embedding.embedding` (C-contiguous)."""
        run("lookup", ids.size, ids.reshape(-1), weight, out.reshape(-1, weight.shape[1]))

    def embedding_vjp(ids, dout, dweight):
        """Arguments as :func:`refode.kernels.reference.embedding.embedding_vjp`."""
        width = dweight.shape[1]
        run("scatter", (width + chunk - 1) // chunk, ids.reshape(-1), dout.reshape(-1, width),
            chunk, dweight)

    return embedding, embedding_vjp


embedding, embedding_vjp = drivers(Runner(BODIES))
