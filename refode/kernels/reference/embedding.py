"""Token embedding (a row lookup) and its scatter-add VJP: the meaning of ``embedding``."""
import numpy as np

__all__ = ["embedding", "embedding_vjp"]


def embedding(ids, weight, out):
    """Look up rows: ``out[b, l] = weight[ids[b, l]]``.

    Parameters
    ----------
    ids : (B, L) int64, each in ``[0, V)``
    weight : (V, D) float32 or float64
    out : (B, L, D) same dtype; overwritten
    """
    out[...] = weight[ids]


def embedding_vjp(ids, dout, dweight):
    """Scatter-add ``dweight[ids[b, l]] += dout[b, l]``, positions in row-major order.

    Parameters
    ----------
    ids : (B, L) int64
    dout : (B, L, D) cotangent of ``out``
    dweight : (V, D) overwritten (rows of unused tokens are zero)
    """
    dweight[...] = 0
    flat_ids = ids.reshape(-1)
    flat_dout = dout.reshape(flat_ids.size, -1)
    for r in range(flat_ids.size):
        dweight[flat_ids[r]] += flat_dout[r]
