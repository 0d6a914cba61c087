"""Weights at a stage, the Runge-Kutta loop and the loss, in jax.numpy."""
import jax.numpy as jnp

from validation.torch_impl.grid import float_tableau, stage_grid


def at(c, support):
    """``theta = sum_q w_q c[k_q]`` (a lone weight 1 is ``c[k]`` itself)."""
    idx, w = support
    acc = None
    for k, wk in zip(idx, w):
        term = c[k] if wk == 1.0 else wk * c[k]
        acc = term if acc is None else acc + term
    return jnp.zeros_like(c[0]) if acc is None else acc


def _sum(terms):
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc


def integrate(rate, h, family, k, scheme, n_steps, interval=(0.0, 1.0)):
    """Explicit RK over the exact stage grid; ``rate(y, support) -> (k, record)``.

    Returns ``h(t1)`` and ``[(support, record)]`` of every stage in order.
    """
    dt, supports = stage_grid(family, k, scheme, n_steps, interval)
    a, b = float_tableau(scheme)
    visited = []
    for row in supports:
        ks = []
        for i, support in enumerate(row):
            terms = [ks[j] if aij == 1.0 else aij * ks[j] for j, aij in enumerate(a[i])
                     if aij != 0.0]
            y = h if not terms else h + dt * _sum(terms)
            ki, record = rate(y, support)
            ks.append(ki)
            visited.append((support, record))
        h = h + dt * _sum([ki if bi == 1.0 else bi * ki for bi, ki in zip(b, ks) if bi != 0.0])
    return h, visited


def cross_entropy(logits, targets):
    """Mean cross-entropy over rows whose target is not -100 (format.md 5.8)."""
    z = logits.reshape(-1, logits.shape[-1])
    t = jnp.asarray(targets).reshape(-1)
    keep = t != -100
    safe = jnp.where(keep, t, 0)
    m = z.max(axis=-1, keepdims=True)
    lse = jnp.log(jnp.exp(z - m).sum(axis=-1)) + m[:, 0]
    picked = jnp.take_along_axis(z, safe[:, None], axis=-1)[:, 0]
    return jnp.where(keep, lse - picked, 0.0).sum() / jnp.maximum(keep.sum(), 1).astype(z.dtype)
