"""A tiny ContinuousNet written in PyTorch, as a user of refode would write it.

Only what this project needs: the piecewise-constant basis (every tableau refode registers,
every architecture option), batch statistics or running statistics, autograd for the
gradients, and the stateful batch norm's running update of a training step. Read from
refode's docs/format.md alone (sections 4-6).

Deliberate bugs, for the demonstration that a wrong implementation fails (environment
variable ``TINY_ODE_BUG``):

- ``piece``: the piece of a stage from a float depth, ``int(K * t)`` with
  ``t = n * (1 / N) + c * (1 / N)`` (the original code's rule: one piece off at some steps,
  e.g. step 5 of ``K = N = 7``);
- ``limit``: a stage at the end of its step (``c = 1``) takes the right limit (the next
  piece) instead of the left one;
- ``momentum``: the running statistics keep ``0.1`` of the old value (Flax's momentum 0.9
  read as PyTorch's) instead of ``0.9``.
"""
import math
import os
from fractions import Fraction as F

import torch
import torch.nn.functional as fn

#: batch-norm eps and the PyTorch momentum (weight of the batch statistic).
EPS, MOMENTUM = 1e-5, 0.1
#: ``name: (a, b, c)`` of every explicit Runge-Kutta method (docs/format.md 4.4).
TABLEAUS = {
    "euler": ([[]], [1], [0]),
    "midpoint": ([[], [F(1, 2)]], [0, 1], [0, F(1, 2)]),
    "heun": ([[], [1]], [F(1, 2), F(1, 2)], [0, 1]),
    "ralston": ([[], [F(2, 3)]], [F(1, 4), F(3, 4)], [0, F(2, 3)]),
    "kutta3": ([[], [F(1, 2)], [-1, 2]], [F(1, 6), F(2, 3), F(1, 6)], [0, F(1, 2), 1]),
    "ssprk3": ([[], [1], [F(1, 4), F(1, 4)]], [F(1, 6), F(1, 6), F(2, 3)], [0, 1, F(1, 2)]),
    "rk4": ([[], [F(1, 2)], [0, F(1, 2)], [0, 0, 1]], [F(1, 6), F(1, 3), F(1, 3), F(1, 6)],
            [0, F(1, 2), F(1, 2), 1]),
    "rk4_38": ([[], [F(1, 3)], [F(-1, 3), 1], [1, -1, 1]], [F(1, 8), F(3, 8), F(3, 8), F(1, 8)],
               [0, F(1, 3), F(2, 3), 1]),
}


def bug():
    """The deliberate bug asked for by ``TINY_ODE_BUG`` (``""``: none)."""
    return os.environ.get("TINY_ODE_BUG", "")


def piece(k, n, c, n_steps):
    """Piece of the piecewise-constant basis used by stage ``c`` of step ``n``."""
    c = F(c)
    if bug() == "piece":
        t = n * (1.0 / n_steps) + float(c) * (1.0 / n_steps)
        return min(int(k * t), k - 1)
    x = (n + c) / n_steps
    if c == 1 and bug() != "limit":
        return max(math.ceil(k * x) - 1, 0)  # left limit: the weights of this step
    return min(math.floor(k * x), k - 1)


def conv(x, w, stride, padding):
    """PyTorch cross-correlation with refode's "symmetric" or "same" padding."""
    k = w.shape[-1]
    if padding == "symmetric":
        return fn.conv2d(x, w, stride=stride, padding=k // 2)
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad wants (left, right, top, bottom)
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return fn.conv2d(fn.pad(x, pads), w, stride=stride)


class Net:
    """Forward pass of one ContinuousNet given its arrays (as torch tensors)."""

    def __init__(self, config, params, state, train):
        if config["basis"] != "piecewise_constant":
            raise NotImplementedError(f"basis {config['basis']}")
        self.cfg, self.p, self.s, self.train = config, params, state, train
        self.batch_stats = {}    # name -> (mean, unbiased var) of the last forward
        self.stage_stats = {}    # block bn -> list of (piece, mean, unbiased var)

    def bn(self, x, name, mean=None, var=None):
        gamma, beta = self.p[f"{name}.gamma"], self.p[f"{name}.beta"]
        if self.train:
            mu = x.mean((0, 2, 3))
            var_b = ((x - mu[None, :, None, None]) ** 2).mean((0, 2, 3))
            n = x.shape[0] * x.shape[2] * x.shape[3]
            stats = (mu.detach(), var_b.detach() * n / (n - 1))
            mean, var = mu, var_b
        else:
            stats = None
            if mean is None:
                mean, var = self.s[f"{name}.mean"], self.s[f"{name}.var"]
        y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + EPS)
        return gamma[None, :, None, None] * y + beta[None, :, None, None], stats

    def plain_bn(self, x, name):
        y, stats = self.bn(x, name)
        if stats is not None:
            self.batch_stats[name] = stats
        return y

    def stitch(self, j, u):
        pad, s = self.cfg["padding"], 1 if j == 1 else 2
        b = fn.relu(self.plain_bn(u, f"stitch{j}.branch.bn1"))
        b = conv(b, self.p[f"stitch{j}.branch.conv1.weight"], s, pad)
        b = fn.relu(self.plain_bn(b, f"stitch{j}.branch.bn2"))
        b = conv(b, self.p[f"stitch{j}.branch.conv2.weight"], 1, pad)
        if j == 1:
            short = u
        else:
            short = self.plain_bn(conv(u, self.p[f"stitch{j}.shortcut.conv.weight"], s, pad),
                                  f"stitch{j}.shortcut.bn")
        return short + self.cfg["stitch_scale"] * b

    def stage_bn(self, x, block, which, p):
        name = f"{block}.{which}"
        gamma, beta = self.p[f"{name}.gamma"][p], self.p[f"{name}.beta"][p]
        saved = self.p[f"{name}.gamma"], self.p[f"{name}.beta"]
        self.p[f"{name}.gamma"], self.p[f"{name}.beta"] = gamma, beta
        try:
            y, stats = self.bn(x, name, self.s[f"{name}.mean"][p], self.s[f"{name}.var"][p])
        finally:
            self.p[f"{name}.gamma"], self.p[f"{name}.beta"] = saved
        if stats is not None:
            self.stage_stats.setdefault(name, []).append((p,) + stats)
        return y

    def rate(self, block, h, p):
        r = fn.relu(self.stage_bn(h, block, "bn1", p))
        r = conv(r, self.p[f"{block}.conv1.weight"][p], 1, "symmetric")
        r = fn.relu(self.stage_bn(r, block, "bn2", p))
        r = conv(r, self.p[f"{block}.conv2.weight"][p], 1, "symmetric")
        return self.cfg["rate_scale"] * r

    def ode_block(self, j, h):
        a, b, c = TABLEAUS[self.cfg["scheme"]]
        k, n_steps = self.cfg["n_basis"], self.cfg["n_steps"]
        dt = 1.0 / n_steps
        for n in range(n_steps):
            ks = []
            for i, ci in enumerate(c):
                y = h
                for aij, kj in zip(a[i], ks):
                    if aij:
                        y = y + dt * float(aij) * kj
                ks.append(self.rate(f"block{j}", y, piece(k, n, ci, n_steps)))
            h = h + dt * sum(float(bi) * ki for bi, ki in zip(b, ks) if bi)
        return h

    def forward(self, x):
        h = fn.relu(self.plain_bn(conv(x, self.p["stem_conv.weight"], 1, self.cfg["padding"]),
                                  "stem_bn"))
        for j in range(1, len(self.cfg["widths"]) + 1):
            h = self.ode_block(j, self.stitch(j, h))
        g = self.plain_bn(h, "head_bn")
        if self.cfg["head_activation"] == "relu":
            g = fn.relu(g)
        return g.mean((2, 3)) @ self.p["dense.weight"].T + self.p["dense.bias"]

    def updated_state(self):
        """Running statistics after the step (PyTorch momentum; stateful fit per piece)."""
        keep = MOMENTUM if bug() == "momentum" else 1 - MOMENTUM
        new = {k: v.detach().clone() for k, v in self.s.items()}
        for name, (mu, var) in self.batch_stats.items():
            new[f"{name}.mean"] = (1 - keep) * mu + keep * self.s[f"{name}.mean"]
            new[f"{name}.var"] = (1 - keep) * var + keep * self.s[f"{name}.var"]
        for name, samples in self.stage_stats.items():
            for stat, col in (("mean", 1), ("var", 2)):
                old = self.s[f"{name}.{stat}"]
                for p in sorted({smp[0] for smp in samples}):
                    q = [(1 - keep) * smp[col] + keep * old[p] for smp in samples if smp[0] == p]
                    new[f"{name}.{stat}"][p] = sum(q) / len(q)  # least squares of a constant
        return new


def run_case(case):
    """refode's contract: a golden case in, outputs, gradients and running statistics out."""
    if case.family != "ContinuousNet":
        raise NotImplementedError(case.family)
    dtype = torch.float64 if case.dtype.name == "float64" else torch.float32
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in case.params.items()}
    state = {k: torch.tensor(v, dtype=dtype) for k, v in case.state.items()}
    x = torch.tensor(case.x, dtype=dtype, requires_grad=True)
    net = Net(case.config, dict(params), state, case.mode == "train")
    logits = net.forward(x)
    loss = fn.cross_entropy(logits, torch.tensor(case.y))
    loss.backward()
    out = {"outputs/logits": logits, "outputs/loss": loss, "gradients/inputs/x": x.grad}
    out.update({f"gradients/params/{k}": v.grad for k, v in params.items()})
    out.update({f"outputs/state/{k}": v for k, v in net.updated_state().items()})
    return out
