"""An independent PyTorch implementation of the ODE-Net sentence tagger, for the tests.

Written with ``torch.nn.functional`` and autograd only (no refode computation): token
embedding + sinusoidal positions -> an explicit loop over steps and Runge-Kutta stages
with ``theta(t) = sum_q w_q theta_{k_q}`` -> LayerNorm -> Linear. From refode it takes
plain values only: the model's arrays and its basis description (family, size,
interval). The Butcher tableaus, the stage positions, their one-sided sides and the
basis weights at every stage are computed by :mod:`.torch_grid` (docs/format.md 4.2-4.6,
no refode import), so a wrong piece choice in refode's stage grid makes this peer disagree.
"""
import torch
import torch.nn.functional as F

from . import torch_grid

#: the explicit tableaus, ``{scheme: (c, b, a rows)}`` as exact fractions.
TABLEAUS = torch_grid.TABLEAUS
#: layer-norm epsilon and the positional wavelength base.
LN_EPS, POSITION_BASE = 1e-5, 10000.0


def positions(length, width):
    """``P[p, 2i] = sin(p / 10000^(2i/D))``, ``P[p, 2i+1] = cos(...)``, float64."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    pair = (torch.arange(width) // 2 * 2).to(torch.float64)
    angle = pos / POSITION_BASE ** (pair / width)
    even = (torch.arange(width) % 2 == 0)[None, :]
    return torch.where(even, torch.sin(angle), torch.cos(angle))


def attention(u, th, heads, padded):
    """Multi-head self-attention with a key padding mask (``padded`` True = masked)."""
    b, length, d = u.shape
    w, bias = th["attn_weights"], th.get("attn_biases")

    def project(i, x):
        return F.linear(x, w[i], None if bias is None else bias[i])

    def split(x):
        return x.view(b, length, heads, d // heads).transpose(1, 2)

    q, k, v = (split(project(i, u)) for i in range(3))
    keep = ~padded[:, None, None, :]
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    return project(3, ctx.transpose(1, 2).reshape(b, length, d))


def rate(x, th, heads, padded, kind, eps=LN_EPS):
    """Paper: ``s + MLP(LN2(x + s))``; pre-LN: ``s + MLP(LN2(x))``; ``s = SA(LN1(x))``."""
    d = x.shape[-1]
    s = attention(F.layer_norm(x, (d,), th["ln1_gamma"], th["ln1_beta"], eps), th, heads,
                  padded)
    z = x + s if kind == "paper" else x
    v = F.layer_norm(z, (d,), th["ln2_gamma"], th["ln2_beta"], eps)
    f = F.linear(F.elu(F.linear(v, th["mlp_w1"], th["mlp_b1"])), th["mlp_w2"], th["mlp_b2"])
    return (s + f).masked_fill(padded[..., None], 0.0)


def ode_block(x, coefficients, supports, scheme, n_steps, heads, padded, kind, eps=LN_EPS,
              dt=None):
    """``n_steps`` explicit RK steps of ``scheme``; ``supports[n][i] = (idx, w)``.

    ``dt`` is ``(t1 - t0) / n_steps`` (``1 / n_steps`` on ``[0, 1]`` if not given).
    """
    a_rows, b = torch_grid.float_tableau(scheme)
    dt = 1.0 / n_steps if dt is None else dt
    h = x
    for n in range(n_steps):
        ks = []
        for i, row in enumerate(a_rows):
            terms = [a * ks[j] for j, a in enumerate(row) if a != 0]
            y = h + dt * sum(terms[1:], terms[0]) if terms else h
            idx, weights = supports[n][i]
            th = {name: sum(w * c[k] for k, w in zip(idx, weights))
                  for name, c in coefficients.items()}
            ks.append(rate(y, th, heads, padded, kind, eps))
        terms = [bi * k for bi, k in zip(b, ks) if bi != 0]
        h = h + dt * sum(terms[1:], terms[0])
    return h


class TorchTagger(torch.nn.Module):
    """The tagger with parameters copied from refode's named arrays.

    Parameters
    ----------
    arrays : dict ``"<layer>.<array>" -> ndarray`` (refode's ``model.params``)
    basis : refode Basis or ``(family, K[, (t0, t1)])``
        Only its description is read (:func:`.torch_grid.describe`); the stage grid is
        computed here.
    scheme : str, one of :data:`TABLEAUS`
    n_steps, heads, padding_id : int
    kind : {"paper", "pre_ln"}
    eps : float, the layer norms' regulariser
    flip : bool
        Build the grid with the two one-sided limits swapped (a deliberately wrong grid).
    """

    def __init__(self, arrays, basis, scheme, n_steps, heads, padding_id, kind="paper",
                 eps=LN_EPS, flip=False):
        super().__init__()
        self.p = torch.nn.ParameterDict({
            name.replace(".", "__"): torch.nn.Parameter(torch.tensor(a.copy()))
            for name, a in arrays.items()})
        _, _, (t0, t1) = torch_grid.describe(basis)
        self.supports = torch_grid.supports(basis, scheme, n_steps, flip=flip)
        self.dt = (t1 - t0) / n_steps
        self.scheme, self.n_steps = scheme, n_steps
        self.heads, self.padding_id, self.kind = heads, padding_id, kind
        self.eps = eps

    def arrays(self, layer):
        """``{array: tensor}`` of one layer."""
        prefix = f"{layer}__"
        return {k[len(prefix):]: v for k, v in self.p.items() if k.startswith(prefix)}

    def forward(self, ids):
        """Logits (B, L, n_tags) of ``ids`` (B, L) int64 tensor."""
        padded = ids == self.padding_id
        emb = self.arrays("embed")["weight"]
        x = F.embedding(ids, emb) + positions(ids.shape[1], emb.shape[1])
        h = ode_block(x, self.arrays("ode"), self.supports, self.scheme, self.n_steps,
                      self.heads, padded, self.kind, self.eps, self.dt)
        norm, head = self.arrays("norm"), self.arrays("head")
        h = F.layer_norm(h, (h.shape[-1],), norm["gamma"], norm["beta"], self.eps)
        return F.linear(h, head["weight"], head["bias"])

    def loss_and_gradients(self, ids, targets):
        """Mean cross-entropy (ignore -100) and ``{refode name: gradient ndarray}``."""
        self.zero_grad()
        logits = self(ids)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=-100)
        loss.backward()
        grads = {k.replace("__", "."): v.grad.numpy() for k, v in self.p.items()}
        return float(loss.detach()), grads

