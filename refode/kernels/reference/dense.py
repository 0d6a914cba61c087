"""Dense (fully connected) layer: the meaning of the ``dense`` kernels."""

__all__ = ["dense", "dense_vjp"]


def dense(x, w, b, out):
    """``out = x @ w.T + b``, with ``w`` laid out as PyTorch's ``Linear.weight``.

    Parameters
    ----------
    x : (M, n_in) float32 or float64
    w : (n_out, n_in) same dtype
    b : (n_out,) same dtype, or None for no bias
    out : (M, n_out) same dtype; overwritten
    """
    out[...] = x @ w.T
    if b is not None:
        out += b


def dense_vjp(x, w, g, dx, dw, db):
    """Vector-Jacobian product of :func:`dense` with the output cotangent ``g``.

    Parameters
    ----------
    x : (M, n_in)
    w : (n_out, n_in)
    g : (M, n_out) cotangent of ``out``
    dx : (M, n_in); overwritten with ``g @ w``
    dw : (n_out, n_in); overwritten with ``g.T @ x``
    db : (n_out,) overwritten with the column sums of ``g`` (rows added in order),
        or None when the layer has no bias
    """
    dx[...] = g @ w
    dw[...] = g.T @ x
    if db is not None:
        db[...] = 0
        for row in g:
            db += row
