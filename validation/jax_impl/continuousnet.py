"""ContinuousNet (docs/format.md section 6), functional JAX.

``params`` and ``state`` are nested dicts of refode's names (see the package docstring);
``cfg`` is the file's JSON ``config``.
"""
import jax
import jax.numpy as jnp
from jax import lax

from .common import at, cross_entropy, integrate

#: batch-norm regulariser and PyTorch momentum (format.md 5.2).
EPS, MOMENTUM = 1e-5, 0.1


def _same(size, k, stride):
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv(x, w, stride, padding):
    """Bias-free cross-correlation (NCHW, OIHW), "symmetric" or "same" padding (5.1)."""
    k = w.shape[-1]
    if padding == "symmetric":
        pads = [(k // 2, k // 2)] * 2
    else:
        pads = [_same(x.shape[2], k, stride), _same(x.shape[3], k, stride)]
    return lax.conv_general_dilated(x, w, (stride, stride), pads,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    precision=lax.Precision.HIGHEST)


def _bcast(v):
    return v[None, :, None, None]


def batch_norm(x, gamma, beta, mean, var, train):
    """Batch norm over ``(B, H, W)``; returns ``(y, (batch mean, unbiased var) or None)``."""
    if train:
        mu = x.mean(axis=(0, 2, 3))
        var_b = ((x - _bcast(mu)) ** 2).mean(axis=(0, 2, 3))
        n = x.shape[0] * x.shape[2] * x.shape[3]
        stats = (lax.stop_gradient(mu), lax.stop_gradient(var_b * n / (n - 1)))
        mean, var = mu, var_b
    else:
        stats = None
    scale = gamma / jnp.sqrt(var + EPS)
    return _bcast(scale) * (x - _bcast(mean)) + _bcast(beta), stats


def _bn(x, p, s, train, new_state, name):
    y, stats = batch_norm(x, p["gamma"], p["beta"], s["mean"], s["var"], train)
    if train:
        new_state[name] = {"mean": MOMENTUM * stats[0] + (1 - MOMENTUM) * s["mean"],
                           "var": MOMENTUM * stats[1] + (1 - MOMENTUM) * s["var"]}
    return y


def refit(stat, visited, slot, which):
    """Least-squares refit of one ``(K, C)`` running statistic (format.md 6.4)."""
    k = stat.shape[0]
    rows = [[0.0] * k for _ in visited]
    for r, ((idx, w), _) in enumerate(visited):
        for j, wj in zip(idx, w):
            rows[r][j] = wj
    phi = jnp.asarray(rows, dtype=jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    active = [j for j in range(k) if any(row[j] != 0.0 for row in rows)]
    old = stat.astype(phi.dtype)
    sampled = jnp.stack([at(old, s) for s, _ in visited])
    batch = jnp.stack([rec[slot][which].astype(phi.dtype) for _, rec in visited])
    target = MOMENTUM * batch + (1 - MOMENTUM) * sampled
    phi_a = phi[:, active]
    delta = jnp.linalg.lstsq(phi_a, target - phi_a @ old[jnp.asarray(active)])[0]
    return old.at[jnp.asarray(active)].add(delta).astype(stat.dtype)


def ode_block(h, p, s, cfg, train):
    """ODE-block ``j`` (6.2); returns ``(h(1), refitted state or None)``."""
    scale = float(cfg["rate_scale"])

    def rate(y, support):
        g1, b1 = at(p["bn1"]["gamma"], support), at(p["bn1"]["beta"], support)
        z, st1 = batch_norm(y, g1, b1, at(s["bn1"]["mean"], support),
                            at(s["bn1"]["var"], support), train)
        z = conv(jax.nn.relu(z), at(p["conv1"]["weight"], support), 1, "symmetric")
        g2, b2 = at(p["bn2"]["gamma"], support), at(p["bn2"]["beta"], support)
        z, st2 = batch_norm(z, g2, b2, at(s["bn2"]["mean"], support),
                            at(s["bn2"]["var"], support), train)
        z = conv(jax.nn.relu(z), at(p["conv2"]["weight"], support), 1, "symmetric")
        record = [st1, st2]
        return (z if scale == 1.0 else scale * z), record

    h, visited = integrate(rate, h, cfg["basis"], cfg["n_basis"], cfg["scheme"],
                           cfg["n_steps"])
    if not train:
        return h, None
    new = {bn: {"mean": refit(s[bn]["mean"], visited, slot, 0),
                "var": refit(s[bn]["var"], visited, slot, 1)}
           for slot, bn in enumerate(("bn1", "bn2"))}
    return h, new


def forward(params, state, x, cfg, train):
    """Logits ``(B, n_classes)`` and the state after the pass (unchanged in eval)."""
    new_state = {}
    pad = cfg["padding"]
    h = conv(x, params["stem_conv"]["weight"], 1, pad)
    h = jax.nn.relu(_bn(h, params["stem_bn"], state["stem_bn"], train, new_state, "stem_bn"))
    stitch_scale = float(cfg["stitch_scale"])
    for j in range(1, len(cfg["widths"]) + 1):
        name, p, s = f"stitch{j}", params[f"stitch{j}"], state[f"stitch{j}"]
        stride = 1 if j == 1 else 2
        br, bs, sub = p["branch"], s["branch"], {}
        y = jax.nn.relu(_bn(h, br["bn1"], bs["bn1"], train, sub, "bn1"))
        y = conv(y, br["conv1"]["weight"], stride, pad)
        y = jax.nn.relu(_bn(y, br["bn2"], bs["bn2"], train, sub, "bn2"))
        y = conv(y, br["conv2"]["weight"], 1, pad)
        new_stitch = {"branch": sub}
        if j > 1:
            sc, ss, sub2 = p["shortcut"], s["shortcut"], {}
            skip = _bn(conv(h, sc["conv"]["weight"], stride, pad), sc["bn"], ss["bn"], train,
                       sub2, "bn")
            new_stitch["shortcut"] = sub2
        else:
            skip = h
        h = skip + (y if stitch_scale == 1.0 else stitch_scale * y)
        new_state[name] = new_stitch
        h, block_state = ode_block(h, params[f"block{j}"], state[f"block{j}"], cfg, train)
        new_state[f"block{j}"] = block_state
    g = _bn(h, params["head_bn"], state["head_bn"], train, new_state, "head_bn")
    if cfg["head_activation"] == "relu":
        g = jax.nn.relu(g)
    v = g.mean(axis=(2, 3))
    logits = v @ params["dense"]["weight"].T + params["dense"]["bias"]
    return logits, (new_state if train else state)


def loss_and_grads(params, state, x, y, cfg, train):
    """``(loss, logits, d loss / d params, d loss / d x, state after the pass)``."""

    def loss_fn(p, xx):
        logits, new_state = forward(p, state, xx, cfg, train)
        return cross_entropy(logits, y), (logits, new_state)

    (loss, (logits, new_state)), (gp, gx) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True)(params, jnp.asarray(x))
    return loss, logits, gp, gx, jax.tree_util.tree_map(lax.stop_gradient, new_state)
