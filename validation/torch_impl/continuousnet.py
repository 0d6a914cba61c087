"""ContinuousNet (docs/format.md section 6) as nn.Modules, with autograd.

State-dict keys: refode's names with ``gamma, beta, mean, var`` -> ``weight, bias,
running_mean, running_var`` (plus ``num_batches_tracked`` of every ``nn.BatchNorm2d``).
The ODE-blocks' arrays keep refode's leading basis axis ``K``.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .common import RungeKutta, at, torch_dtype

#: batch-norm regulariser and PyTorch momentum (format.md 5.2).
EPS, MOMENTUM = 1e-5, 0.1


def same_padding(size, k, stride):
    """Flax/TF 'SAME' padding ``(before, after)`` of one axis (format.md 5.1)."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Module):
    """Bias-free cross-correlation, ``padding`` "symmetric" (``k // 2``) or "same"."""

    def __init__(self, c_in, c_out, k, stride, padding, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, k, k, dtype=dtype))
        self.stride, self.padding, self.k = stride, padding, k

    def forward(self, x):
        if self.padding == "symmetric":
            return F.conv2d(x, self.weight, stride=self.stride, padding=self.k // 2)
        top, bottom = same_padding(x.shape[2], self.k, self.stride)
        left, right = same_padding(x.shape[3], self.k, self.stride)
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, stride=self.stride)


def batch_norm(c, dtype):
    return nn.BatchNorm2d(c, eps=EPS, momentum=MOMENTUM, dtype=dtype)


class Stitch(nn.Module):
    """``shortcut(u) + stitch_scale * branch(u)`` (format.md 6.1)."""

    def __init__(self, c_in, c_out, stride, padding, scale, dtype):
        super().__init__()
        self.branch = nn.Module()
        self.branch.bn1 = batch_norm(c_in, dtype)
        self.branch.conv1 = Conv(c_in, c_out, 3, stride, padding, dtype)
        self.branch.bn2 = batch_norm(c_out, dtype)
        self.branch.conv2 = Conv(c_out, c_out, 3, 1, padding, dtype)
        self.has_shortcut = stride != 1
        if self.has_shortcut:
            self.shortcut = nn.Module()
            self.shortcut.conv = Conv(c_in, c_out, 1, stride, padding, dtype)
            self.shortcut.bn = batch_norm(c_out, dtype)
        self.scale = scale

    def forward(self, u):
        b = self.branch
        y = b.conv2(F.relu(b.bn2(b.conv1(F.relu(b.bn1(u))))))
        skip = self.shortcut.bn(self.shortcut.conv(u)) if self.has_shortcut else u
        return skip + (y if self.scale == 1.0 else self.scale * y)


class StatefulBatchNorm(nn.Module):
    """Batch norm whose ``weight, bias, running_mean, running_var`` are ``(K, C)`` in depth."""

    def __init__(self, k, c, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(k, c, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(k, c, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(k, c, dtype=dtype))
        self.register_buffer("running_var", torch.ones(k, c, dtype=dtype))

    def forward(self, x, support, record):
        gamma, beta = at(self.weight, support), at(self.bias, support)
        if self.training:
            with torch.no_grad():
                record.append((x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=True)))
            return F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
        return F.batch_norm(x, at(self.running_mean, support), at(self.running_var, support),
                            gamma, beta, training=False, eps=EPS)

    @torch.no_grad()
    def refit(self, visited, slot):
        """Least-squares refit of the running statistics (format.md 6.4).

        ``visited``: ``(support, record)`` of every stage; ``record[slot]`` is this
        norm's ``(batch mean, unbiased batch variance)``.
        """
        k = self.weight.shape[0]
        phi = torch.zeros(len(visited), k, dtype=torch.float64)
        for r, ((idx, w), _) in enumerate(visited):
            for j, wj in zip(idx, w):
                phi[r, j] = wj
        active = torch.nonzero(phi.abs().sum(0) > 0).flatten()
        phi_a = phi[:, active]
        # on the CPU (a few numbers; CUDA's lstsq has no 'gelsd'): no-ops for CPU tensors
        for which, buf in enumerate((self.running_mean, self.running_var)):
            old = buf.to("cpu", torch.float64)
            sampled = torch.stack([at(old, s) for s, _ in visited])
            batch = torch.stack([rec[slot][which].to("cpu", torch.float64)
                                 for _, rec in visited])
            target = MOMENTUM * batch + (1 - MOMENTUM) * sampled
            # minimum-change solution: stat_A + pinv(Phi_A) (q - Phi_A stat_A)
            resid = target - phi_a @ old[active]
            delta = torch.linalg.lstsq(phi_a, resid, driver="gelsd").solution
            buf[active.to(buf.device)] = (old[active] + delta).to(buf.device, buf.dtype)


class ODEBlock(nn.Module):
    """``h(1) = h(0) + int rate_scale * R(theta(t), h) dt`` by explicit RK (format.md 6.2)."""

    def __init__(self, c, basis, n_basis, scheme, n_steps, rate_scale, dtype):
        super().__init__()
        self.bn1 = StatefulBatchNorm(n_basis, c, dtype)
        self.bn2 = StatefulBatchNorm(n_basis, c, dtype)
        self.conv1 = nn.Module()
        self.conv1.weight = nn.Parameter(torch.zeros(n_basis, c, c, 3, 3, dtype=dtype))
        self.conv2 = nn.Module()
        self.conv2.weight = nn.Parameter(torch.zeros(n_basis, c, c, 3, 3, dtype=dtype))
        self.rk = RungeKutta(basis, n_basis, scheme, n_steps)
        self.rate_scale = rate_scale

    def rate(self, y, support, record):
        z = F.relu(self.bn1(y, support, record))
        z = F.conv2d(z, at(self.conv1.weight, support), padding=1)
        z = F.relu(self.bn2(z, support, record))
        z = F.conv2d(z, at(self.conv2.weight, support), padding=1)
        return z if self.rate_scale == 1.0 else self.rate_scale * z

    def forward(self, h):
        h, visited = self.rk.integrate(self.rate, h)
        if self.training:
            self.bn1.refit(visited, 0)
            self.bn2.refit(visited, 1)
        return h


class TorchContinuousNet(nn.Module):
    """The ContinuousNet of format.md section 6; arguments are the keys of its ``config``.

    Parameters
    ----------
    in_channels, n_classes : int
    widths : sequence of int
    basis : str, n_basis : int, scheme : str, n_steps : int
    head_activation : {"none", "relu"}
    padding : {"symmetric", "same"}
    rate_scale, stitch_scale : float
    dtype : torch dtype or name, default float64

    Notes
    -----
    Parameters start at zeros/ones: load values with
    ``load_state_dict(refode.interop.torch.state_dict(...))``. ``train()`` mode uses
    batch statistics and updates the running statistics of every batch norm (the
    ODE-blocks' by the least-squares refit), as a PyTorch training step.
    """

    def __init__(self, in_channels, n_classes, widths, basis, n_basis, scheme, n_steps,
                 head_activation="none", padding="symmetric", rate_scale=1.0,
                 stitch_scale=1.0, dtype=torch.float64):
        super().__init__()
        dt = torch_dtype(dtype)
        self.stem_conv = Conv(in_channels, widths[0], 3, 1, padding, dt)
        self.stem_bn = batch_norm(widths[0], dt)
        c_in = widths[0]
        self.n_stages = len(widths)
        for j, w in enumerate(widths, start=1):
            self.add_module(f"stitch{j}", Stitch(c_in, w, 1 if j == 1 else 2, padding,
                                                 float(stitch_scale), dt))
            self.add_module(f"block{j}", ODEBlock(w, basis, n_basis, scheme, n_steps,
                                                  float(rate_scale), dt))
            c_in = w
        self.head_bn = batch_norm(c_in, dt)
        self.head_relu = head_activation == "relu"
        self.dense = nn.Linear(c_in, n_classes, dtype=dt)

    def forward(self, x):
        """Logits ``(B, n_classes)`` of images ``x`` ``(B, C0, H, W)``."""
        h = F.relu(self.stem_bn(self.stem_conv(x)))
        for j in range(1, self.n_stages + 1):
            h = getattr(self, f"block{j}")(getattr(self, f"stitch{j}")(h))
        g = self.head_bn(h)
        if self.head_relu:
            g = F.relu(g)
        return self.dense(g.mean(dim=(2, 3)))
