"""An independent PyTorch implementation of refode's models, written from docs/format.md alone.

Nothing here comes from refode's source: the module reads a refode HDF5 weight file (or
the ``/model`` group of a golden file) with h5py and rebuilds the computation the
document specifies (sections 4-7) as a float64 ``torch.nn.Module``, so that autograd
gives the gradients refode computes with its hand-written discrete adjoint:

- config, options and version-1 defaults (2.2, 1 "Versions");
- every basis family's ``phi_k`` from the formulas of 4.2, with the one-sided piece
  rules of 4.3 evaluated in exact rational arithmetic (``fractions.Fraction``);
- every registered tableau of 4.4 and the stage grid of 4.5 (side ``"left"`` iff
  ``c_i == 1``), weights at a stage by 4.6, the Runge-Kutta step of 4.7;
- convolutions with both padding modes (5.1), batch norm (5.2) including the stateful
  evaluation-mode statistics of the ODE-blocks (6.3) and the running-statistics update of
  a training step (5.2, 6.4), the head activation, ``rate_scale`` and ``stitch_scale``;
- the ContinuousTagger (section 7): embedding + sinusoidal positions, masked multi-head
  self-attention, the ``paper`` and ``pre_ln`` encoder rates, layer norms.

It imports only torch, numpy, h5py, json, fractions and math.
"""
import json
import math
from fractions import Fraction

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-5
MOMENTUM = 0.1
KEEP = 0.9
IGNORE_INDEX = -100
POSITION_BASE = 10000.0

VERSION_1_DEFAULTS = {
    "ContinuousNet": {"head_activation": "relu", "padding": "symmetric",
                      "rate_scale": 1.0, "stitch_scale": 1.0},
    "ContinuousTagger": {"ln_eps": 1e-5},
}

# ---------------------------------------------------------------------------------------
# 4.4 tableaus: (c, b, a rows) as exact fractions
# ---------------------------------------------------------------------------------------
_Fr = Fraction
TABLEAUS = {
    "euler": ([_Fr(0)], [_Fr(1)], [[]]),
    "midpoint": ([_Fr(0), _Fr(1, 2)], [_Fr(0), _Fr(1)], [[], [_Fr(1, 2)]]),
    "heun": ([_Fr(0), _Fr(1)], [_Fr(1, 2), _Fr(1, 2)], [[], [_Fr(1)]]),
    "ralston": ([_Fr(0), _Fr(2, 3)], [_Fr(1, 4), _Fr(3, 4)], [[], [_Fr(2, 3)]]),
    "kutta3": ([_Fr(0), _Fr(1, 2), _Fr(1)], [_Fr(1, 6), _Fr(2, 3), _Fr(1, 6)],
               [[], [_Fr(1, 2)], [_Fr(-1), _Fr(2)]]),
    "ssprk3": ([_Fr(0), _Fr(1), _Fr(1, 2)], [_Fr(1, 6), _Fr(1, 6), _Fr(2, 3)],
               [[], [_Fr(1)], [_Fr(1, 4), _Fr(1, 4)]]),
    "rk4": ([_Fr(0), _Fr(1, 2), _Fr(1, 2), _Fr(1)], [_Fr(1, 6), _Fr(1, 3), _Fr(1, 3), _Fr(1, 6)],
            [[], [_Fr(1, 2)], [_Fr(0), _Fr(1, 2)], [_Fr(0), _Fr(0), _Fr(1)]]),
    "rk4_38": ([_Fr(0), _Fr(1, 3), _Fr(2, 3), _Fr(1)], [_Fr(1, 8), _Fr(3, 8), _Fr(3, 8), _Fr(1, 8)],
               [[], [_Fr(1, 3)], [_Fr(-1, 3), _Fr(1)], [_Fr(1), _Fr(-1), _Fr(1)]]),
}


# ---------------------------------------------------------------------------------------
# 4.2 / 4.3 bases
# ---------------------------------------------------------------------------------------
def _piece(P, x, side):
    """4.3 for equal pieces b_p = p/P at exact rational x."""
    x = Fraction(x)
    u, v = x.numerator, x.denominator
    if side == "right":
        p = (P * u) // v  # floor(P x)
        return min(max(p, 0), P - 1)
    if side == "left":
        p = -((-P * u) // v) - 1  # ceil(P x) - 1
        return min(max(p, 0), P - 1)
    raise ValueError(side)


def _legendre(K, s):
    vals = [1.0]
    if K > 1:
        vals.append(s)
    for k in range(1, K - 1):
        vals.append(((2 * k + 1) * s * vals[k] - k * vals[k - 1]) / (k + 1))
    return vals[:K]


def _chebyshev(K, s):
    vals = [1.0]
    if K > 1:
        vals.append(s)
    for k in range(1, K - 1):
        vals.append(2 * s * vals[k] - vals[k - 1])
    return vals[:K]


def basis_terms(family, K, interval, x, side):
    """Nonzero ``(k, phi_k(x))`` at exact unit position ``x`` with ``side``, increasing k.

    ``phi_k`` are float64 values computed from the float64 of the exact local coordinate.
    """
    t0, t1 = float(interval[0]), float(interval[1])
    L = t1 - t0
    x = Fraction(x)
    if family == "piecewise_constant":
        if K < 1:
            raise ValueError("K")
        terms = [(_piece(K, x, side), 1.0)]
    elif family == "piecewise_linear":
        if K < 2 or K % 2:
            raise ValueError("piecewise_linear needs even K >= 2")
        E = K // 2
        e = _piece(E, x, side)
        xi = float(x * E - e)
        terms = [(2 * e, 1.0 - xi), (2 * e + 1, xi)]
    elif family == "fem_linear":
        if K < 2:
            raise ValueError("fem_linear needs K >= 2")
        P = K - 1
        p = _piece(P, x, side)
        xi = float(x * P - p)
        terms = [(p, 1.0 - xi), (p + 1, xi)]
    elif family == "poly_linear":
        if K != 2:
            raise ValueError("poly_linear needs K = 2")
        t = t0 + float(x) * L
        terms = [(0, 1.0), (1, t)]
    elif family == "legendre":
        s = 2.0 * float(x) - 1.0
        P = _legendre(K, s)
        terms = [(k, math.sqrt((2 * k + 1) / L) * P[k]) for k in range(K)]
    elif family == "chebyshev":
        s = 2.0 * float(x) - 1.0
        T = _chebyshev(K, s)
        terms = [(k, T[k]) for k in range(K)]
    elif family == "fourier":
        if K < 1 or K % 2 == 0:
            raise ValueError("fourier needs odd K")
        xf = float(x)
        terms = [(0, 1.0)]
        for m in range(1, (K - 1) // 2 + 1):
            terms.append((2 * m - 1, math.cos(2 * math.pi * m * xf)))
            terms.append((2 * m, math.sin(2 * math.pi * m * xf)))
    else:
        raise ValueError(f"unknown basis {family!r}")
    return [(k, w) for k, w in terms if w != 0.0]


def stage_grid(scheme, N):
    """4.5: list of ``(n, i, x_{n,i}, side)`` in evaluation order."""
    c, _, _ = TABLEAUS[scheme]
    out = []
    for n in range(N):
        for i, ci in enumerate(c):
            out.append((n, i, (n + ci) / N, "left" if ci == 1 else "right"))
    return out


def combine(terms, theta):
    """4.6: ``sum phi_k theta[k]`` over the nonzero terms, increasing k (theta (K, ...))."""
    acc = None
    for k, w in terms:
        term = theta[k] if w == 1.0 else theta[k] * w
        acc = term if acc is None else acc + term
    return acc


def _weighted_sum(coefs, ks):
    acc = None
    for a, kj in zip(coefs, ks):
        if a == 0:
            continue
        term = kj if a == 1 else kj * float(a)
        acc = term if acc is None else acc + term
    return acc


def rk_integrate(rate, h, scheme, N, interval, basis_at):
    """4.7: explicit RK over N steps; ``rate(stage_index, terms, Y)`` gives ``k_i``."""
    c, b, a = TABLEAUS[scheme]
    dt = (float(interval[1]) - float(interval[0])) / N
    r = 0
    for n in range(N):
        ks = []
        for i, ci in enumerate(c):
            acc = _weighted_sum(a[i], ks)
            Y = h if acc is None else h + dt * acc
            x = (n + ci) / N
            terms = basis_at(x, "left" if ci == 1 else "right")
            ks.append(rate(r, terms, Y))
            r += 1
        h = h + dt * _weighted_sum(b, ks)
    return h


# ---------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------
def _s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_weight_group(source):
    """``(model, config, blocks, params, state)`` of a weight file / group / golden file."""
    own = isinstance(source, (str, bytes)) or hasattr(source, "__fspath__")
    f = h5py.File(source, "r") if own else source
    try:
        g = f
        if _s(g.attrs["format"]) == "refode-golden":
            g = g["model"]
        if _s(g.attrs["format"]) != "refode-weights" and "params" not in g:
            raise ValueError("not a weight group")
        version = int(g.attrs["format_version"])
        if version not in (1, 2):
            raise ValueError(f"format_version {version}")
        model = _s(g.attrs["model"])
        cfg = json.loads(g.attrs["config"])
        if version == 1:
            cfg = {**VERSION_1_DEFAULTS[model], **cfg}
        blocks = {}
        for name, grp in g["blocks"].items():
            at = grp.attrs
            blocks[name] = {"basis": _s(at["basis"]), "n_basis": int(at["n_basis"]),
                            "interval": [float(v) for v in np.asarray(at["interval"])],
                            "scheme": _s(at["scheme"]), "n_steps": int(at["n_steps"])}
        params = {k: np.array(v[()]) for k, v in g["params"].items()}
        state = {k: np.array(v[()]) for k, v in g["state"].items()}
        dtype = _s(g.attrs["dtype"])
    finally:
        if own:
            f.close()
    return model, cfg, blocks, params, state, dtype


class _Base(nn.Module):
    def _register(self, params, state):
        self._names = {}
        for name, arr in params.items():
            p = nn.Parameter(torch.tensor(arr, dtype=torch.float64))
            mangled = name.replace(".", "__")
            self.register_parameter(mangled, p)
            self._names[name] = mangled
        self.state_arrays = {k: torch.tensor(v, dtype=torch.float64) for k, v in state.items()}

    def p(self, name):
        return getattr(self, self._names[name])

    def named_arrays(self):
        """``{file name: Parameter}``."""
        return {name: self.p(name) for name in self._names}


# ---------------------------------------------------------------------------------------
# 5. operations
# ---------------------------------------------------------------------------------------
def conv2d(x, w, stride, padding_mode):
    k = w.shape[-1]
    pads = []
    for n in (x.shape[3], x.shape[2]):  # F.pad order: last axis first
        if padding_mode == "symmetric":
            before = after = k // 2
        elif padding_mode == "same":
            total = max((-(-n // stride) - 1) * stride + k - n, 0)
            before = total // 2
            after = total - before
        else:
            raise ValueError(padding_mode)
        pads += [before, after]
    if any(pads):
        x = F.pad(x, pads)
    return F.conv2d(x, w, stride=stride)


def batch_norm(x, gamma, beta, train, mean=None, var=None, record=None):
    """5.2 over (B, H, W) per channel; appends ``(mu, var_u)`` to ``record`` in training."""
    if train:
        mu = x.mean(dim=(0, 2, 3))
        d = x - mu.view(1, -1, 1, 1)
        var_b = (d * d).mean(dim=(0, 2, 3))
        n = x.shape[0] * x.shape[2] * x.shape[3]
        if record is not None:
            mu_d = mu.detach().clone()
            var_u = var_b.detach() * n / (n - 1)
            record.append((mu_d, var_u))
        scale = gamma * (1.0 / torch.sqrt(var_b + BN_EPS))
        return d * scale.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
    scale = gamma * (1.0 / torch.sqrt(var + BN_EPS))
    return (x - mean.view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def cross_entropy(z, y):
    """5.8: mean over kept rows (``y != -100``), divisor ``max(n_kept, 1)``."""
    z = z.reshape(-1, z.shape[-1])
    y = torch.as_tensor(np.asarray(y)).reshape(-1).long()
    kept = y != IGNORE_INDEX
    n_kept = int(kept.sum())
    if n_kept == 0:
        return (z * 0.0).sum()
    lse = torch.logsumexp(z[kept], dim=-1)
    picked = z[kept].gather(1, y[kept].view(-1, 1)).view(-1)
    return (lse - picked).sum() / max(n_kept, 1)


def layer_norm(x, gamma, beta, eps):
    mu = x.mean(dim=-1, keepdim=True)
    d = x - mu
    var = (d * d).mean(dim=-1, keepdim=True)
    return d * (1.0 / torch.sqrt(var + eps)) * gamma + beta


def running_update(mean, var, mu, var_u):
    return MOMENTUM * mu + KEEP * mean, MOMENTUM * var_u + KEEP * var


# ---------------------------------------------------------------------------------------
# 6. ContinuousNet
# ---------------------------------------------------------------------------------------
class ContinuousNet(_Base):
    """ContinuousNet of docs/format.md section 6, read from a weight file or group."""

    def __init__(self, source):
        super().__init__()
        model, cfg, blocks, params, state, dtype = read_weight_group(source)
        if model != "ContinuousNet":
            raise ValueError(model)
        self.cfg = cfg
        self.dtype_name = dtype
        self.widths = list(cfg["widths"])
        self.S = len(self.widths)
        self.basis = cfg["basis"]
        self.K = int(cfg["n_basis"])
        self.scheme = cfg["scheme"]
        self.N = int(cfg["n_steps"])
        self.interval = (0.0, 1.0)
        self.head_activation = cfg["head_activation"]
        self.padding = cfg["padding"]
        self.rate_scale = float(cfg["rate_scale"])
        self.stitch_scale = float(cfg["stitch_scale"])
        for j in range(1, self.S + 1):
            blk = blocks[f"block{j}"]
            assert blk["basis"] == self.basis and blk["n_basis"] == self.K
            assert blk["scheme"] == self.scheme and blk["n_steps"] == self.N
        self._register(params, state)
        self._grid = stage_grid(self.scheme, self.N)
        self._terms = {}

    def basis_at(self, x, side):
        key = (x, side)
        if key not in self._terms:
            self._terms[key] = basis_terms(self.basis, self.K, self.interval, x, side)
        return self._terms[key]

    # -- layers ---------------------------------------------------------------------
    def _bn(self, prefix, x, train):
        st = self.state_arrays
        rec = self._record.setdefault(prefix, []) if train else None
        return batch_norm(x, self.p(prefix + ".gamma"), self.p(prefix + ".beta"), train,
                          st[prefix + ".mean"], st[prefix + ".var"], rec)

    def _stitch(self, j, u, train):
        s = 1 if j == 1 else 2
        pre = f"stitch{j}."
        h = torch.relu(self._bn(pre + "branch.bn1", u, train))
        h = conv2d(h, self.p(pre + "branch.conv1.weight"), s, self.padding)
        h = torch.relu(self._bn(pre + "branch.bn2", h, train))
        h = conv2d(h, self.p(pre + "branch.conv2.weight"), 1, self.padding)
        if j >= 2:
            sc = self._bn(pre + "shortcut.bn",
                          conv2d(u, self.p(pre + "shortcut.conv.weight"), s, self.padding), train)
        else:
            sc = u
        return sc + (h if self.stitch_scale == 1.0 else self.stitch_scale * h)

    def _block(self, j, h, train):
        pre = f"block{j}."
        P = {n: self.p(pre + n) for n in ("conv1.weight", "conv2.weight", "bn1.gamma",
                                           "bn1.beta", "bn2.gamma", "bn2.beta")}
        st = {n: self.state_arrays[pre + n] for n in ("bn1.mean", "bn1.var", "bn2.mean",
                                                      "bn2.var")}
        rec1 = self._record.setdefault(pre + "bn1", []) if train else None
        rec2 = self._record.setdefault(pre + "bn2", []) if train else None

        def rate(r, terms, Y):
            th = {n: combine(terms, v) for n, v in P.items()}
            if train:
                m1 = v1 = m2 = v2 = None
            else:
                m1, v1 = combine(terms, st["bn1.mean"]), combine(terms, st["bn1.var"])
                m2, v2 = combine(terms, st["bn2.mean"]), combine(terms, st["bn2.var"])
            z = torch.relu(batch_norm(Y, th["bn1.gamma"], th["bn1.beta"], train, m1, v1, rec1))
            z = conv2d(z, th["conv1.weight"], 1, "symmetric")
            z = torch.relu(batch_norm(z, th["bn2.gamma"], th["bn2.beta"], train, m2, v2, rec2))
            z = conv2d(z, th["conv2.weight"], 1, "symmetric")
            return z if self.rate_scale == 1.0 else self.rate_scale * z

        return rk_integrate(rate, h, self.scheme, self.N, self.interval, self.basis_at)

    def forward(self, x, train=False):
        """Logits ``(B, n_classes)``; ``x`` a float64 tensor (may require grad)."""
        self._record = {}
        h = torch.relu(self._bn("stem_bn", conv2d(x, self.p("stem_conv.weight"), 1,
                                                   self.padding), train))
        for j in range(1, self.S + 1):
            h = self._stitch(j, h, train)
            h = self._block(j, h, train)
        g = self._bn("head_bn", h, train)
        if self.head_activation == "relu":
            g = torch.relu(g)
        v = g.mean(dim=(2, 3))
        return v @ self.p("dense.weight").T + self.p("dense.bias")

    def loss_and_gradients(self, x, y, train=True):
        """``(loss, logits, {name: grad}, dloss/dx)`` in float64 numpy arrays."""
        xt = torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True)
        self.zero_grad(set_to_none=True)
        logits = self.forward(xt, train=train)
        loss = cross_entropy(logits, y)
        loss.backward()
        grads = {n: (p.grad.numpy().copy() if p.grad is not None else np.zeros(p.shape))
                 for n, p in self.named_arrays().items()}
        return float(loss.detach()), logits.detach().numpy(), grads, xt.grad.numpy().copy()

    # -- 6.4 running statistics --------------------------------------------------------
    def updated_state(self):
        """The state after the training step whose forward pass was the last one."""
        new = {}
        for prefix, rec in self._record.items():
            if prefix.startswith("block"):
                continue
            mu, var_u = rec[0]
            m, v = running_update(self.state_arrays[prefix + ".mean"],
                                  self.state_arrays[prefix + ".var"], mu, var_u)
            new[prefix + ".mean"], new[prefix + ".var"] = m.numpy(), v.numpy()
        rows = [self.basis_at(x, side) for (_, _, x, side) in self._grid]
        Phi = np.zeros((len(rows), self.K))
        for r, terms in enumerate(rows):
            for k, w in terms:
                Phi[r, k] = w
        active = [k for k in range(self.K) if np.any(Phi[:, k] != 0)]
        PhiA = Phi[:, active]
        pinv = np.linalg.pinv(PhiA)
        for j in range(1, self.S + 1):
            for bn in ("bn1", "bn2"):
                prefix = f"block{j}.{bn}"
                rec = self._record[prefix]
                assert len(rec) == len(rows)
                for which, idx in (("mean", 0), ("var", 1)):
                    stat = self.state_arrays[f"{prefix}.{which}"].numpy().astype(np.float64)
                    beta = np.stack([rec[r][idx].numpy() for r in range(len(rows))])  # (R, C)
                    at = Phi @ stat  # stat(x_r) by 6.3
                    q = MOMENTUM * beta + KEEP * at
                    out = stat.copy()
                    sA = stat[active]
                    out[active] = sA + pinv @ (q - PhiA @ sA)
                    new[f"{prefix}.{which}"] = out
        return new


# ---------------------------------------------------------------------------------------
# 7. ContinuousTagger
# ---------------------------------------------------------------------------------------
def positions(L, D):
    p = np.arange(L, dtype=np.float64)[:, None]
    j = np.arange(D)
    angle = p / np.power(POSITION_BASE, (2 * (j // 2)).astype(np.float64) / D)[None, :]
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle))


def self_attention(u, W, bias, H, mask):
    B, L, D = u.shape
    dh = D // H

    def proj(i):
        out = u @ W[i].T
        return out if bias is None else out + bias[i]

    q, k, v = proj(0), proj(1), proj(2)
    ctx = []
    for h in range(H):
        sl = slice(h * dh, (h + 1) * dh)
        S = (q[..., sl] @ k[..., sl].transpose(1, 2)) * (1.0 / math.sqrt(dh))
        if mask is None:
            A = torch.softmax(S, dim=-1)
        else:
            km = mask[:, None, :]  # (B, 1, L) True = padded key
            smax = S.masked_fill(km, -math.inf).amax(dim=-1, keepdim=True).detach()
            smax = torch.where(torch.isfinite(smax), smax, torch.zeros_like(smax))
            E = torch.where(km, torch.zeros_like(S), torch.exp(S - smax))
            den = E.sum(dim=-1, keepdim=True)
            A = E / torch.where(den == 0, torch.ones_like(den), den)
        ctx.append(A @ v[..., sl])
    out = torch.cat(ctx, dim=-1) @ W[3].T
    return out if bias is None else out + bias[3]


class ContinuousTagger(_Base):
    """ContinuousTagger of docs/format.md section 7."""

    def __init__(self, source):
        super().__init__()
        model, cfg, blocks, params, state, dtype = read_weight_group(source)
        if model != "ContinuousTagger":
            raise ValueError(model)
        self.cfg = cfg
        self.D, self.H = int(cfg["width"]), int(cfg["heads"])
        self.basis, self.K = cfg["basis"], int(cfg["n_basis"])
        self.interval = tuple(float(v) for v in cfg["interval"])
        self.scheme, self.N = cfg["scheme"], int(cfg["n_steps"])
        self.padding_id = int(cfg["padding_id"])
        self.rate_kind = cfg["rate"]
        if self.rate_kind not in ("paper", "pre_ln"):
            raise ValueError(self.rate_kind)
        self.attention_bias = bool(cfg["attention_bias"])
        self.ln_eps = float(cfg["ln_eps"])
        blk = blocks["ode"]
        assert blk["basis"] == self.basis and blk["n_basis"] == self.K
        assert blk["scheme"] == self.scheme and blk["n_steps"] == self.N
        assert all(abs(a - b) == 0 for a, b in zip(blk["interval"], self.interval))
        self._register(params, state)
        self._terms = {}

    def basis_at(self, x, side):
        key = (x, side)
        if key not in self._terms:
            self._terms[key] = basis_terms(self.basis, self.K, self.interval, x, side)
        return self._terms[key]

    def embed(self, ids):
        ids = torch.as_tensor(np.asarray(ids)).long()
        L = ids.shape[1]
        P = torch.tensor(positions(L, self.D), dtype=torch.float64)
        return self.p("embed.weight")[ids] + P, ids

    def forward_from_embedded(self, e, ids):
        M = ids == self.padding_id
        mask = M if bool(M.any()) else None
        names = ["ln1_gamma", "ln1_beta", "ln2_gamma", "ln2_beta", "mlp_b2", "attn_weights",
                 "mlp_w1", "mlp_b1", "mlp_w2"] + (["attn_biases"] if self.attention_bias else [])
        P = {n: self.p("ode." + n) for n in names}
        eps = self.ln_eps
        keep = (~M)[..., None]

        def rate(r, terms, x):
            th = {n: combine(terms, v) for n, v in P.items()}
            u = layer_norm(x, th["ln1_gamma"], th["ln1_beta"], eps)
            a = self_attention(u, th["attn_weights"], th.get("attn_biases"), self.H, mask)
            z = x + a if self.rate_kind == "paper" else x
            hdn = layer_norm(z, th["ln2_gamma"], th["ln2_beta"], eps) @ th["mlp_w1"].T + th["mlp_b1"]
            f = F.elu(hdn) @ th["mlp_w2"].T + th["mlp_b2"]
            R = a + f
            return torch.where(keep, R, torch.zeros_like(R))

        xT = rk_integrate(rate, e, self.scheme, self.N, self.interval, self.basis_at)
        y = layer_norm(xT, self.p("norm.gamma"), self.p("norm.beta"), eps)
        return y @ self.p("head.weight").T + self.p("head.bias")

    def forward(self, ids):
        e, ids_t = self.embed(ids)
        return self.forward_from_embedded(e, ids_t)

    def loss_and_gradients(self, ids, tags):
        """``(loss, logits, {name: grad}, dloss/de)``."""
        self.zero_grad(set_to_none=True)
        e, ids_t = self.embed(ids)
        e.retain_grad()
        logits = self.forward_from_embedded(e, ids_t)
        loss = cross_entropy(logits, tags)
        loss.backward()
        grads = {n: (p.grad.numpy().copy() if p.grad is not None else np.zeros(p.shape))
                 for n, p in self.named_arrays().items()}
        de = e.grad.numpy().copy() if e.grad is not None else np.zeros(e.shape)
        return float(loss.detach()), logits.detach().numpy(), grads, de


def load(source):
    """The spec model stored in ``source`` (weight file, golden file, or h5py group)."""
    model = read_weight_group(source)[0]
    return {"ContinuousNet": ContinuousNet, "ContinuousTagger": ContinuousTagger}[model](source)
