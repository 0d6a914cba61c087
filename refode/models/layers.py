"""Depth-independent layers of the convolutional model (the :mod:`._layers` protocol).

Images are ``(N, C, H, W)``. Layers that update state replace the state arrays with
new ones (never in place), so a caller can keep a snapshot by copying the dict.
Every layer runs the kernels of its ``backend`` (:class:`~refode.models._layers.Layer`).
"""
import numpy as np

from .. import kernels
from ..backend import add, contiguous, empty, empty_like, get as get_backend, scale as times
from ..errors import RefodeError
from ..kernels.workspace import Workspace
from . import _ops
from ._layers import Layer, Sequential

#: conv padding modes: PyTorch's symmetric ``k // 2`` and Flax/TensorFlow's ``'SAME'``.
SYMMETRIC, SAME = "symmetric", "same"
PADDINGS = (SYMMETRIC, SAME)


def he_normal(rng, shape, dtype):
    """He initialisation of a conv weight ``(O, C, k, k)``: ``N(0, 2 / (C k k))``."""
    fan_in = int(np.prod(shape[-3:]))
    return (np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)).astype(dtype)


class Conv(Layer):
    """Convolution without bias; ``params = {"weight": (O, C, k, k)}``; ``padding`` one of
    :data:`PADDINGS` (:func:`refode.models._ops.pads`)."""

    def __init__(self, weight, stride, padding=SYMMETRIC, backend="cpu"):
        super().__init__(backend, {"weight": weight})
        if padding not in PADDINGS:
            raise RefodeError(f"unknown `padding` {padding!r}; choose one of "
                              f"{', '.join(PADDINGS)}")
        self.stride, self.padding = stride, padding
        self.workspace = Workspace()

    def _pad(self, shape):
        return _ops.pads(shape, self.params["weight"].shape[2], self.stride, self.padding)

    def forward(self, x, train):
        pad = self._pad(x.shape)
        return _ops.conv(x, self.params["weight"], self.stride, pad, self.workspace,
                         backend=self.backend), x

    def backward(self, cache, dy):
        dx, dw = _ops.conv_vjp(cache, self.params["weight"], dy, self.stride,
                               self._pad(cache.shape), self.workspace, backend=self.backend)
        return dx, {"weight": dw}


class BatchNorm(Layer):
    """Affine batch norm over channels; params gamma/beta ``(C,)``, state mean/var ``(C,)``.

    Training normalises with batch statistics and updates the running statistics as
    PyTorch's ``BatchNorm2d(momentum=0.1)``: ``0.1 * batch + 0.9 * running``, with the
    *unbiased* batch variance. Evaluation normalises with the running statistics.
    """

    def __init__(self, channels, dtype, backend="cpu"):
        super().__init__(backend,
                         {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)},
                         {"mean": np.zeros(channels, dtype), "var": np.ones(channels, dtype)})

    def forward(self, x, train):
        p, s = self.params, self.state
        y, mean, var = _ops.bn(x, p["gamma"], p["beta"], s["mean"], s["var"], train,
                               backend=self.backend)
        if train:
            self.state = {"mean": _ops.running_update(s["mean"], mean),
                          "var": _ops.running_update(s["var"], var)}
        return y, (x, train)

    def backward(self, cache, dy):
        x, train = cache
        dx, g = _ops.bn_vjp(x, self.params["gamma"], self.state["mean"], self.state["var"], dy,
                            train, backend=self.backend)
        return dx, {"gamma": g["gamma"], "beta": g["beta"]}


class ReLU(Layer):
    """Elementwise ``max(x, 0)``; the gradient is 0 where ``x <= 0`` (PyTorch's choice)."""

    def forward(self, x, train):
        return _ops.relu(x, backend=self.backend), x

    def backward(self, cache, dy):
        return _ops.relu_vjp(cache, dy, backend=self.backend), {}


class GlobalAvgPool(Layer):
    """Global average pooling ``(N, C, H, W) -> (N, C)``."""

    def forward(self, x, train):
        return _ops.avgpool(x, backend=self.backend), x.shape

    def backward(self, cache, dy):
        return _ops.avgpool_vjp(dy, cache, backend=self.backend), {}


class Dense(Layer):
    """``y = x @ weight.T + bias`` over the last axis of ``x``; ``weight (n_out, n_in)``,
    ``bias (n_out,)`` as PyTorch's ``Linear``. Used by both model families."""

    def __init__(self, weight, bias, backend="cpu"):
        super().__init__(backend, {"weight": weight, "bias": bias})

    @classmethod
    def uniform(cls, n_in, n_out, rng, dtype, backend="cpu"):
        """As PyTorch's ``Linear``: uniform in ``+-1/sqrt(n_in)`` (weight, then bias)."""
        bound = 1.0 / np.sqrt(n_in)
        return cls(rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype),
                   rng.uniform(-bound, bound, n_out).astype(dtype), backend)

    def forward(self, x, train):
        shape = tuple(x.shape)
        x2 = contiguous(x)
        x2 = x2.reshape(x2.size // shape[-1], shape[-1])
        w, b = (contiguous(self.params[k], x2) for k in ("weight", "bias"))
        out = empty((x2.shape[0], w.shape[0]), x2.dtype, x2)
        kernels.get("dense", self.backend)(x2, w, b, out)
        return out.reshape(*shape[:-1], w.shape[0]), (x2, shape)

    def backward(self, cache, dy):
        x2, shape = cache
        g = contiguous(dy, x2)
        g = g.reshape(x2.shape[0], g.size // x2.shape[0])
        dx = empty_like(x2)
        grads = {k: empty(v.shape, v.dtype, x2) for k, v in self.params.items()}
        kernels.get("dense.dense_vjp", self.backend)(x2, contiguous(self.params["weight"], x2),
                                                     g, dx, grads["weight"], grads["bias"])
        return dx.reshape(shape), grads


class Stitch(Sequential):
    """``out = shortcut(x) + scale * branch(x)`` between two widths (paper, section 5).

    branch: BN -> ReLU -> conv3x3 (stride s) -> BN -> ReLU -> conv3x3; shortcut: the
    identity when ``s == 1`` and the widths match, else 1x1 conv (stride s) + BN on the
    raw input ``x``. ``scale`` is the original code's ``stitch_epsilon`` (1 by default).
    Arrays: ``"branch.bn1.gamma"``, ..., ``"branch.conv2.weight"``,
    ``"shortcut.conv.weight"``, ``"shortcut.bn.gamma"``, ...
    """

    def __init__(self, c_in, c_out, stride, rng, dtype, padding=SYMMETRIC, scale=1.0,
                 backend="cpu"):
        be = get_backend(backend)
        branch = Sequential([
            ("bn1", BatchNorm(c_in, dtype, be)), ("relu1", ReLU(be)),
            ("conv1", Conv(he_normal(rng, (c_out, c_in, 3, 3), dtype), stride, padding, be)),
            ("bn2", BatchNorm(c_out, dtype, be)), ("relu2", ReLU(be)),
            ("conv2", Conv(he_normal(rng, (c_out, c_out, 3, 3), dtype), 1, padding, be)),
        ])
        layers = {"branch": branch}
        if stride != 1 or c_in != c_out:
            layers["shortcut"] = Sequential([
                ("conv", Conv(he_normal(rng, (c_out, c_in, 1, 1), dtype), stride, padding, be)),
                ("bn", BatchNorm(c_out, dtype, be)),
            ])
        super().__init__(layers)
        self.scale = float(scale)

    def forward(self, x, train):
        y, branch_cache = self.layers["branch"].forward(x, train)
        if self.scale != 1.0:
            y = times(self.scale, y)
        s, skip_cache = (self.layers["shortcut"].forward(x, train) if "shortcut" in self.layers
                         else (x, None))
        return add(s, y), (branch_cache, skip_cache)

    def backward(self, cache, dy):
        branch_cache, skip_cache = cache
        dbranch = dy if self.scale == 1.0 else times(self.scale, dy)
        dx, g = self.layers["branch"].backward(branch_cache, dbranch)
        grads = {f"branch.{k}": v for k, v in g.items()}
        if skip_cache is None:
            return add(dy, dx), grads
        dskip, g = self.layers["shortcut"].backward(skip_cache, dy)
        grads.update({f"shortcut.{k}": v for k, v in g.items()})
        return add(dskip, dx), grads
