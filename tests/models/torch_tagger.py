"""An independent PyTorch implementation of the ODE-Net sentence tagger, for the tests.

Written with ``torch.nn.functional`` and autograd only (no refode computation): token
embedding + sinusoidal positions -> an explicit loop over steps and Runge-Kutta stages
with ``theta(t) = sum_q w_q theta_{k_q}`` -> LayerNorm -> Linear. From refode it takes
plain numbers only: the initial arrays, and the stage supports (indices, weights) of
:func:`refode.integrate.grid.stage_grid`. The Butcher tableaus are written out here.
"""
import torch
import torch.nn.functional as F

#: explicit tableaus ``(a rows below the diagonal, b)``, written out independently.
TABLEAUS = {
    "euler": ([[]], [1.0]),
    "midpoint": ([[], [0.5]], [0.0, 1.0]),
    "rk4": ([[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6]),
}
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


def ode_block(x, coefficients, supports, scheme, n_steps, heads, padded, kind, eps=LN_EPS):
    """``n_steps`` explicit RK steps of ``scheme`` on [0, 1]; ``supports[n][i] = (idx, w)``."""
    a_rows, b = TABLEAUS[scheme]
    dt = 1.0 / n_steps
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
    supports : stage supports of refode's stage grid (plain numbers)
    scheme : str, one of :data:`TABLEAUS`
    n_steps, heads, padding_id : int
    kind : {"paper", "pre_ln"}
    eps : float, the layer norms' regulariser
    """

    def __init__(self, arrays, supports, scheme, n_steps, heads, padding_id, kind="paper",
                 eps=LN_EPS):
        super().__init__()
        self.p = torch.nn.ParameterDict({
            name.replace(".", "__"): torch.nn.Parameter(torch.tensor(a.copy()))
            for name, a in arrays.items()})
        self.supports, self.scheme, self.n_steps = supports, scheme, n_steps
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
                      self.heads, padded, self.kind, self.eps)
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

