"""An independent PyTorch implementation of refode's ContinuousNet, for the tests.

torch.nn modules and autograd; nothing of refode is used for the computation. From
refode only the model's arrays and its configuration (basis family, size and interval,
scheme, ``N``, options) are read. The Runge-Kutta tableau, every stage's exact position,
its one-sided side and its sparse basis weights ``(indices, weights)`` come from
:mod:`.torch_grid` (docs/format.md 4.2-4.6, no refode import), so a wrong piece choice in
refode's stage grid makes this peer disagree. The weights ``theta(t) = sum_q w_q
theta_{k_q}`` are assembled here in torch, the ODE-block is an explicit loop over steps
and stages, and the running statistics of the ODE-blocks are refitted with
``torch.linalg.lstsq`` on the sampled basis functions (the others keep their
coefficients).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import torch_grid

#: batch-norm settings of the paper (PyTorch's momentum is 1 - m).
EPS, MOMENTUM = 1e-5, 0.1
#: the running statistics of an ODE-block's rate.
STATS = ("bn1.mean", "bn1.var", "bn2.mean", "bn2.var")


def _bn(c):
    return nn.BatchNorm2d(c, eps=EPS, momentum=MOMENTUM, dtype=torch.float64)


def _same(size, k, stride):
    """TensorFlow/Flax 'SAME' padding (before, after) of one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class _Conv(nn.Conv2d):
    """``nn.Conv2d`` without bias, padded symmetrically (``k // 2``) or as 'SAME'."""

    def __init__(self, c_in, c_out, k, stride, padding):
        super().__init__(c_in, c_out, k, stride, 0, bias=False, dtype=torch.float64)
        self.mode, self.k_size, self.step = padding, k, stride

    def forward(self, x):
        if self.mode == "symmetric":
            p = self.k_size // 2
            top = bottom = left = right = p
        else:
            top, bottom = _same(x.shape[2], self.k_size, self.step)
            left, right = _same(x.shape[3], self.k_size, self.step)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _conv(c_in, c_out, k, stride, padding="symmetric"):
    return _Conv(c_in, c_out, k, stride, padding)


def _bn_names(prefix, bn):
    return {f"{prefix}.gamma": bn.weight, f"{prefix}.beta": bn.bias,
            f"{prefix}.mean": bn.running_mean, f"{prefix}.var": bn.running_var}


class Stitch(nn.Module):
    def __init__(self, c_in, c_out, stride, padding="symmetric", scale=1.0):
        super().__init__()
        self.bn1, self.conv1 = _bn(c_in), _conv(c_in, c_out, 3, stride, padding)
        self.bn2, self.conv2 = _bn(c_out), _conv(c_out, c_out, 3, 1, padding)
        self.skip = stride != 1 or c_in != c_out
        self.scale = scale
        if self.skip:
            self.sconv, self.sbn = _conv(c_in, c_out, 1, stride, padding), _bn(c_out)

    def forward(self, x):
        y = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        return (self.sbn(self.sconv(x)) if self.skip else x) + self.scale * y

    def tensors(self, p):
        out = {f"{p}.branch.conv1.weight": self.conv1.weight,
               f"{p}.branch.conv2.weight": self.conv2.weight,
               **_bn_names(f"{p}.branch.bn1", self.bn1), **_bn_names(f"{p}.branch.bn2", self.bn2)}
        if self.skip:
            out[f"{p}.shortcut.conv.weight"] = self.sconv.weight
            out.update(_bn_names(f"{p}.shortcut.bn", self.sbn))
        return out


class ODEBlock(nn.Module):
    """``N`` explicit Runge-Kutta steps of the conv rate with basis-expanded weights and stats."""

    def __init__(self, channels, basis, scheme, n_steps, scale=1.0, flip=False):
        super().__init__()
        self.scale = scale
        _, k, (t0, t1) = torch_grid.describe(basis)
        vec = lambda v: nn.Parameter(torch.full((k, channels), v, dtype=torch.float64))
        conv = lambda: nn.Parameter(torch.zeros(k, channels, channels, 3, 3, dtype=torch.float64))
        self.g1, self.b1, self.w1 = vec(1.0), vec(0.0), conv()
        self.g2, self.b2, self.w2 = vec(1.0), vec(0.0), conv()
        for name in STATS:
            self.register_buffer(name.replace(".", "_"), torch.full(
                (k, channels), 1.0 if name.endswith("var") else 0.0, dtype=torch.float64))
        self.supports = torch_grid.supports(basis, scheme, n_steps, flip=flip)
        self.dt = (t1 - t0) / n_steps
        a_rows, self.b = torch_grid.float_tableau(scheme)
        self.a = [row + [0.0] * (len(self.b) - len(row)) for row in a_rows]
        self.k = k

    def tensors(self, p):
        out = {f"{p}.bn1.gamma": self.g1, f"{p}.bn1.beta": self.b1, f"{p}.conv1.weight": self.w1,
               f"{p}.bn2.gamma": self.g2, f"{p}.bn2.beta": self.b2, f"{p}.conv2.weight": self.w2}
        out.update({f"{p}.{name}": getattr(self, name.replace(".", "_")) for name in STATS})
        return out

    @staticmethod
    def _at(c, support):
        idx, w = support
        if not idx:
            return torch.zeros_like(c[0])
        acc = w[0] * c[idx[0]]
        for k, wk in zip(idx[1:], w[1:]):
            acc = acc + wk * c[k]
        return acc

    def _norm(self, x, gamma, beta, mean, var, record):
        if self.training:
            with torch.no_grad():
                record.append(x.mean(dim=(0, 2, 3)))
                record.append(x.var(dim=(0, 2, 3), unbiased=True))
            return F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
        return F.batch_norm(x, mean, var, gamma, beta, training=False, eps=EPS)

    def rate(self, y, s, record):
        at = lambda c: self._at(c, s)
        stats = [at(getattr(self, n.replace(".", "_"))) for n in STATS]
        z = F.relu(self._norm(y, at(self.g1), at(self.b1), stats[0], stats[1], record))
        z = F.conv2d(z, at(self.w1), stride=1, padding=1)
        z = F.relu(self._norm(z, at(self.g2), at(self.b2), stats[2], stats[3], record))
        return self.scale * F.conv2d(z, at(self.w2), stride=1, padding=1)

    def forward(self, h):
        records, samples = [], []
        for row in self.supports:
            ks = []
            for i, s in enumerate(row):
                y = h
                for j in range(i):
                    if self.a[i][j] != 0:
                        y = y + self.dt * self.a[i][j] * ks[j]
                rec = []
                ks.append(self.rate(y, s, rec))
                records.append(rec)
                samples.append(s)
            h = h + self.dt * sum(bi * ki for bi, ki in zip(self.b, ks) if bi != 0)
        if self.training:
            self._refit(records, samples)
        return h

    @torch.no_grad()
    def _refit(self, records, supports):
        phi = torch.zeros(len(supports), self.k, dtype=torch.float64)
        for r, (idx, w) in enumerate(supports):
            for k, wk in zip(idx, w):
                phi[r, k] = wk
        active = torch.nonzero(phi.abs().sum(0) > 0).flatten()
        for j, name in enumerate(STATS):
            buf = getattr(self, name.replace(".", "_"))
            old = torch.stack([self._at(buf, s) for s in supports])
            batch = torch.stack([rec[j] for rec in records])
            target = MOMENTUM * batch + (1 - MOMENTUM) * old
            sol = torch.linalg.lstsq(phi[:, active], target, driver="gelsd").solution
            buf[active] = sol


class TorchContinuousNet(nn.Module):
    """The model of :class:`refode.models.ContinuousNet`, weights copied from one.

    ``flip=True`` builds the ODE-blocks on a deliberately wrong stage grid (the two
    one-sided limits swapped, :func:`.torch_grid.supports`).
    """

    def __init__(self, model, in_channels, n_classes, widths, flip=False):
        super().__init__()
        pad = model.padding
        self.stem_conv = _conv(in_channels, widths[0], 3, 1, pad)
        self.stem_bn = _bn(widths[0])
        self.head_relu = model.head_activation == "relu"
        stages, c_in = [], widths[0]
        for j, w in enumerate(widths):
            stages += [Stitch(c_in, w, 1 if j == 0 else 2, pad, model.stitch_scale),
                       ODEBlock(w, model.basis, model.scheme, model.n_steps, model.rate_scale,
                                flip)]
            c_in = w
        self.stages = nn.ModuleList(stages)
        self.head_bn = _bn(c_in)
        self.dense = nn.Linear(c_in, n_classes, dtype=torch.float64)
        with torch.no_grad():
            for name, t in self.tensors().items():
                t.copy_(torch.from_numpy(np.array({**model.params, **model.state}[name])))

    def tensors(self):
        """``{refode name: torch tensor}`` of every parameter and running statistic."""
        out = {"stem_conv.weight": self.stem_conv.weight, **_bn_names("stem_bn", self.stem_bn),
               **_bn_names("head_bn", self.head_bn),
               "dense.weight": self.dense.weight, "dense.bias": self.dense.bias}
        for j in range(len(self.stages) // 2):
            out.update(self.stages[2 * j].tensors(f"stitch{j + 1}"))
            out.update(self.stages[2 * j + 1].tensors(f"block{j + 1}"))
        return out

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for stage in self.stages:
            x = stage(x)
        x = self.head_bn(x)
        if self.head_relu:
            x = F.relu(x)
        x = x.mean(dim=(2, 3))
        return self.dense(x)
