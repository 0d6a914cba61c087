"""Multi-head self-attention with a key padding mask: the meaning of the ``attention`` kernels.

Layout and conventions (those of ``torch.nn.MultiheadAttention(batch_first=True)``):

- ``x`` is (B, L, D); ``weights`` stacks the Q, K, V and output projections as
  (4, D, D) in PyTorch's (out, in) order, so ``q = x @ weights[0].T + biases[0]``;
  ``biases`` is (4, D) or ``None`` (no biases).
- ``heads`` divides D; head ``h`` uses features ``h * D/heads ... (h + 1) * D/heads``;
  scores are ``q_h k_h^T / sqrt(D/heads)``.
- ``mask`` is (B, L) bool, ``True`` for a padded position, or ``None``. Padded keys get
  attention weight exactly zero. Padded *queries* are computed like any other query
  (they attend to the non-padded keys), as PyTorch does, so their rows are finite and
  equal PyTorch's; callers ignore them. A sequence whose keys are *all* padded gets
  zero attention weights, hence context 0 and output ``biases[3]`` (PyTorch gives NaN).

Computations run in float64 (complex128 for complex-step checks).
"""
import numpy as np

__all__ = ["attention", "attention_vjp"]

#: index of each projection in the stacked ``weights`` / ``biases``.
Q, K, V, O = 0, 1, 2, 3


def _work(x):
    return np.asarray(x).astype(np.promote_types(np.asarray(x).dtype, np.float64))


def _linear(x, weights, biases, which):
    y = x @ _work(weights[which]).T
    return y if biases is None else y + _work(biases[which])


def split_heads(t, heads):
    """(B, L, D) -> (B, H, L, D/H)."""
    b, length, d = t.shape
    return t.reshape(b, length, heads, d // heads).transpose(0, 2, 1, 3)


def merge_heads(t):
    """(B, H, L, D/H) -> (B, L, D)."""
    b, h, length, dh = t.shape
    return t.transpose(0, 2, 1, 3).reshape(b, length, h * dh)


def _keep(mask, shape):
    """(B, 1, 1, L) bool, True for keys that take part."""
    if mask is None:
        return np.ones((shape[0], 1, 1, shape[1]), dtype=bool)
    return ~np.asarray(mask, dtype=bool)[:, None, None, :]


def masked_softmax(scores, keep):
    """Softmax over the last axis of ``scores`` restricted to ``keep``; all-masked rows give 0."""
    top = np.where(keep, scores.real, -np.inf).max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(keep, np.exp(scores - top), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total != 0, total, 1.0)


def _forward(x, weights, biases, mask, heads, probs=None, qkv=None, ctx=None):
    """The intermediates; each of ``probs``, ``qkv``, ``ctx`` given is used instead of
    being recomputed."""
    xw = _work(x)
    d = x.shape[-1]
    if qkv is None:
        parts = [_linear(xw, weights, biases, i) for i in (Q, K, V)]
    else:
        parts = [_work(qkv)[..., i * d:(i + 1) * d] for i in (Q, K, V)]
    q, k, v = (split_heads(t, heads) for t in parts)
    scale = 1.0 / np.sqrt(q.shape[-1])
    if probs is None:
        p = masked_softmax(scale * (q @ k.transpose(0, 1, 3, 2)), _keep(mask, x.shape))
    else:
        p = _work(probs)
    ctx = merge_heads(p @ v) if ctx is None else _work(ctx)
    return xw, q, k, v, p, ctx, scale


def attention(x, weights, biases, mask, heads, out, probs=None, qkv=None, ctx=None):
    """Multi-head self-attention ``out = softmax(q k^T / sqrt(d_h)) v`` projected by ``O``.

    Parameters
    ----------
    x : (B, L, D) float32 or float64
    weights : (4, D, D) same dtype, Q, K, V, O projections as (out, in)
    biases : (4, D) same dtype, or None
    mask : (B, L) bool, True = padded key, or None
    heads : int dividing D
    out : (B, L, D) same dtype; overwritten
    probs : (B, H, L, L) same dtype, or None
        If given, overwritten with the attention weights ``softmax(q k^T / sqrt(d_h))``
        of every head (what :func:`attention_vjp` can reuse instead of recomputing).
    qkv : (B, L, 3 D) same dtype, or None
        If given, overwritten with the projections ``[q | k | v]`` (biases added, heads
        not split: features ``0 .. D`` are ``q``), for :func:`attention_vjp`.
    ctx : (B, L, D) same dtype, or None
        If given, overwritten with the context ``softmax(...) v`` (heads merged), the
        input of the output projection, for :func:`attention_vjp`.
    """
    _, q, k, v, p, context, _ = _forward(x, weights, biases, mask, heads)
    out[...] = _linear(context, weights, biases, O)
    if probs is not None:
        probs[...] = p
    if qkv is not None:
        qkv[...] = np.concatenate([merge_heads(t) for t in (q, k, v)], axis=-1)
    if ctx is not None:
        ctx[...] = context


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases, probs=None,
                  qkv=None, ctx=None):
    """VJP of :func:`attention` with respect to ``x``, ``weights`` and ``biases``.

    Parameters
    ----------
    x, weights, biases, mask, heads : as for :func:`attention`
    dout : (B, L, D) cotangent of ``out``
    dx : (B, L, D) overwritten
    dweights : (4, D, D) overwritten
    dbiases : (4, D) overwritten, or None when ``biases`` is None
    probs : (B, H, L, L) or None
        The attention weights :func:`attention` wrote for the same inputs (used instead
        of recomputing the scores and the softmax), or None.
    qkv, ctx : (B, L, 3 D) and (B, L, D), or None
        The projections and the context :func:`attention` wrote for the same inputs (used
        instead of recomputing them), or None.
    """
    xw, q, k, v, p, ctx, scale = _forward(x, weights, biases, mask, heads, probs, qkv, ctx)
    g = _work(dout)
    grads = {O: g}
    dctx = split_heads(g @ _work(weights[O]), heads)
    dp = dctx @ v.transpose(0, 1, 3, 2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    grads[Q] = merge_heads(scale * (ds @ k))
    grads[K] = merge_heads(scale * (ds.transpose(0, 1, 3, 2) @ q))
    grads[V] = merge_heads(p.transpose(0, 1, 3, 2) @ dctx)
    inputs = {Q: xw, K: xw, V: xw, O: ctx}
    d = x.shape[-1]
    for i in (Q, K, V, O):
        dweights[i] = grads[i].reshape(-1, d).T @ inputs[i].reshape(-1, d)
        if dbiases is not None:
            dbiases[i] = grads[i].reshape(-1, d).sum(axis=0)
    dx[...] = sum(grads[i] @ _work(weights[i]) for i in (Q, K, V))
