"""The paper's image classifier: stem, [stitch, stateful ODE-block] per width, head.

::

    stem   conv3x3 (in -> widths[0], no bias) -> BN -> ReLU
    stage  Stitch(stride 1, 2, 2, ...) -> StatefulODEBlock   (one per width)
    head   BN -> [ReLU] -> global average pool -> dense(n_classes, with bias)

The head has no activation by default, as in the paper's code (``head_activation=
"relu"`` adds the ReLU that format-version-1 files have). ``padding="same"`` pads as
Flax's ``'SAME'`` (the original code), ``rate_scale`` and ``stitch_scale`` are the
original's ``epsilon`` and ``stitch_epsilon``.

Array names are ``"<layer>.<array>"``: ``stem_conv.weight``, ``stitch1.branch.bn1.gamma``,
``stitch2.shortcut.conv.weight``, ``block1.conv1.weight`` (``(K, C, C, 3, 3)``),
``block1.bn1.mean`` (state, ``(K, C)``), ``head_bn.gamma``, ``dense.weight``, ...
With ``widths=(16, 32, 64)``, 3 input channels and 10 classes the model has
``78,074 + 97,216 K`` trainable parameters.
"""
import numpy as np

from .. import _validate, limits
from ..backend import get as get_backend
from ..errors import RefodeError, ShapeError
from .conv import STATS, weight_shapes
from ._layers import Sequential
from .layers import (PADDINGS, SYMMETRIC, BatchNorm, Conv, Dense, GlobalAvgPool, ReLU, Stitch,
                     he_normal)
from ._spec import Field, check_dtype, real
from .protocol import Model
from .rediscretize import RECALIBRATION_BATCH, discretization
from .stateful import StatefulODEBlock, init_params, init_state

#: strides of the stitch units: the first keeps the resolution, the others halve it.
FIRST_STRIDE, LATER_STRIDE = 1, 2
#: activations between the head batch norm and the pool: none (the paper's code) or ReLU.
NO_ACTIVATION, RELU = "none", "relu"
HEAD_ACTIVATIONS = (NO_ACTIVATION, RELU)
#: the depth interval of every ODE-block.
UNIT_INTERVAL = (0.0, 1.0)
#: kernel size of the stem and stitch convolutions; shortcut convolutions are 1x1.
STEM_KERNEL, SHORTCUT_KERNEL = 3, 1
#: default number of basis functions and of steps.
DEFAULT_N_BASIS = DEFAULT_N_STEPS = 16


def _batchnorm(prefix, channels, params, state):
    params[f"{prefix}.gamma"] = params[f"{prefix}.beta"] = (channels,)
    state[f"{prefix}.mean"] = state[f"{prefix}.var"] = (channels,)


def _stitch(j, c_in, c_out, params, state):
    branch = f"stitch{j}.branch"
    _batchnorm(f"{branch}.bn1", c_in, params, state)
    params[f"{branch}.conv1.weight"] = (c_out, c_in, STEM_KERNEL, STEM_KERNEL)
    _batchnorm(f"{branch}.bn2", c_out, params, state)
    params[f"{branch}.conv2.weight"] = (c_out, c_out, STEM_KERNEL, STEM_KERNEL)
    if (FIRST_STRIDE if j == 1 else LATER_STRIDE) != 1 or c_in != c_out:
        params[f"stitch{j}.shortcut.conv.weight"] = (c_out, c_in, SHORTCUT_KERNEL,
                                                     SHORTCUT_KERNEL)
        _batchnorm(f"stitch{j}.shortcut.bn", c_out, params, state)


class ContinuousNet(Model):
    """Convolutional ContinuousNet with stateful (continuous-in-depth) batch norm.

    Parameters
    ----------
    in_channels, n_classes : int
    widths : tuple of int
        Channels of each stage (one stitch + one ODE-block per width).
    basis, n_basis, scheme, n_steps, seed, dtype
        As every model's (:mod:`refode.models.protocol`); the basis of the weights and
        statistics is on ``[0, 1]``; ``n_steps`` defaults to 16.
    head_activation : {"none", "relu"}
        Activation between the head batch norm and the pool (module docstring).
    padding : {"symmetric", "same"}
        Zero padding of the convolutions: ``k // 2`` on every side (PyTorch's, default)
        or ``'SAME'`` (:func:`refode.models._ops.pads`).
    rate_scale, stitch_scale : float
        ``dh/dt = rate_scale * R(theta(t), h)`` in the ODE-blocks and ``shortcut(x) +
        stitch_scale * branch(x)`` in the stitch units (default 1).
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend
        See :class:`~refode.models.protocol.Model`.

    Attributes
    ----------
    in_channels, n_classes : int
    network : Sequential
        The layers: ``stem_conv, stem_bn, stem_relu, stitch1, block1, ..., head_bn,
        [head_relu,] pool, dense`` (read-only alias ``net``).
    backend : refode.backend.Backend

    The protocol (arrays, config, forward, loss, gradients, rediscretize, files) is
    :class:`~refode.models.protocol.Model`'s; inputs are images ``x (N, C, H, W)``
    (float32 or float64, ``C = in_channels``, ``N >= 1``) and labels ``y (N,)`` in
    ``[0, n_classes)`` (any integer dtype).
    """

    FAMILY = "ContinuousNet"
    FIELDS = {"in_channels": Field(int, 3), "n_classes": Field(int, 10),
              "widths": Field(list, [16, 32, 64]), "basis": Field(str, "piecewise_constant"),
              "n_basis": Field(int, DEFAULT_N_BASIS), "scheme": Field(str, "euler"),
              "n_steps": Field(int, DEFAULT_N_STEPS),
              "head_activation": Field(str, NO_ACTIVATION, HEAD_ACTIVATIONS),
              "padding": Field(str, SYMMETRIC, PADDINGS), "rate_scale": Field(float, 1.0),
              "stitch_scale": Field(float, 1.0)}
    STATEFUL = True
    FIXED_INTERVAL = UNIT_INTERVAL
    BLOCK = StatefulODEBlock

    def __init__(self, in_channels=3, n_classes=10, widths=(16, 32, 64),
                 basis="piecewise_constant", n_basis=None, scheme="euler",
                 n_steps=DEFAULT_N_STEPS, seed=0,
                 dtype=np.float64, *, head_activation=NO_ACTIVATION, padding=SYMMETRIC,
                 rate_scale=1.0, stitch_scale=1.0, backend="cpu"):
        self.in_channels = in_channels = _validate.positive_int(in_channels, "in_channels")
        self.n_classes = n_classes = _validate.positive_int(n_classes, "n_classes")
        if not 1 <= len(widths) <= limits.MAX_STAGES:
            raise RefodeError(f"`widths` must hold 1 to {limits.MAX_STAGES} widths, e.g. "
                              f"(16, 32, 64), got {len(widths)}")
        widths = tuple(_validate.positive_int(w, "widths") for w in widths)
        self.dtype = check_dtype(dtype)
        self.backend = be = get_backend(backend)
        self.head_activation = self.choice("head_activation", head_activation)
        self.padding = self.choice("padding", padding)
        self.rate_scale = real(rate_scale, "rate_scale")
        self.stitch_scale = real(stitch_scale, "stitch_scale")
        self.basis, self.scheme, self.n_steps = discretization(
            type(self), basis, n_basis, scheme, n_steps, DEFAULT_N_BASIS)
        self.check_size({"in_channels": in_channels, "n_classes": n_classes,
                         "widths": list(widths), "n_basis": self.basis.n})
        rng = np.random.default_rng(seed)
        dt = self.dtype
        layers = [
            ("stem_conv", Conv(he_normal(rng, (widths[0], in_channels, 3, 3), dt), 1,
                               padding, be)),
            ("stem_bn", BatchNorm(widths[0], dt, be)),
            ("stem_relu", ReLU(be)),
        ]
        c_in = widths[0]
        for j, width in enumerate(widths, start=1):
            stride = FIRST_STRIDE if j == 1 else LATER_STRIDE
            layers.append((f"stitch{j}", Stitch(c_in, width, stride, rng, dt, padding,
                                                self.stitch_scale, be)))
            layers.append((f"block{j}", StatefulODEBlock(
                self.basis, self.scheme, self.n_steps, init_params(self.basis, width, rng, dt),
                init_state(self.basis, width, dt), rate_scale=self.rate_scale, backend=be)))
            c_in = width
        layers.append(("head_bn", BatchNorm(c_in, dt, be)))
        if head_activation == RELU:
            layers.append(("head_relu", ReLU(be)))
        layers += [("pool", GlobalAvgPool(be)),
                   ("dense", Dense.uniform(c_in, n_classes, rng, dt, be))]
        self.network = Sequential(layers)

    # ------------------------------------------------------------ architecture
    @classmethod
    def shapes(cls, config):
        """``(params, state, blocks)`` of a configuration (see
        :meth:`refode.models.protocol.Model.shapes`); reads ``in_channels``,
        ``n_classes``, ``widths`` and ``n_basis``."""
        params, state, blocks = {}, {}, {}
        k, widths = config["n_basis"], config["widths"]
        params["stem_conv.weight"] = (widths[0], config["in_channels"], STEM_KERNEL,
                                      STEM_KERNEL)
        _batchnorm("stem_bn", widths[0], params, state)
        c_in = widths[0]
        for j, width in enumerate(widths, start=1):
            _stitch(j, c_in, width, params, state)
            blocks[f"block{j}"] = list(UNIT_INTERVAL)
            for arr, shape in weight_shapes(width).items():
                params[f"block{j}.{arr}"] = (k, *shape)
            for arr in STATS:
                state[f"block{j}.{arr}"] = (k, width)
            c_in = width
        _batchnorm("head_bn", c_in, params, state)
        params["dense.weight"] = (config["n_classes"], c_in)
        params["dense.bias"] = (config["n_classes"],)
        return params, state, blocks

    def _architecture(self):
        return {"in_channels": self.in_channels, "n_classes": self.n_classes,
                "widths": [int(b.params["conv1.weight"].shape[1]) for b in self.blocks()],
                "head_activation": str(self.head_activation), "padding": str(self.padding),
                "rate_scale": float(self.rate_scale), "stitch_scale": float(self.stitch_scale)}

    def blocks(self):
        """The :class:`StatefulODEBlock` layers, in order."""
        return list(self.ode_blocks().values())

    # ------------------------------------------------------------ compute
    def _inputs(self, x, train=False):
        """``x`` validated as a batch of images for this model, C-contiguous, its dtype.

        Refused: other than 4-D real floating finite arrays (complex too), no images,
        an empty side, other channels than :attr:`in_channels`, and in training mode a
        batch whose batch norms would see one value per channel (the unbiased batch
        variance is undefined; PyTorch refuses it too).
        """
        x = _validate.as_array(x, "x")
        if x.ndim != 4:
            raise ShapeError(f"`x` must be images (N, C, H, W), got shape {x.shape}")
        n, c, h, w = x.shape
        if n == 0 or h == 0 or w == 0:
            raise ShapeError(f"`x` has shape {x.shape}: it holds no images or an empty image "
                             "side; pass at least one image (N >= 1, H >= 1, W >= 1)")
        if c != self.in_channels:
            raise ShapeError(f"`x` has {c} channels (shape {x.shape}) but the model takes "
                             f"in_channels = {self.in_channels}: pass images (N, "
                             f"{self.in_channels}, H, W)")
        if train:
            halvings = 2 ** (len(self.blocks()) - 1)   # stride-2 stitches: ceil(H / 2)
            values = n * -(-h // halvings) * -(-w // halvings)
            if values < 2:
                raise ShapeError(
                    f"`x` of shape {x.shape} gives the last batch norm {values} value per "
                    "channel; training mode needs at least 2 (the batch variance): pass "
                    "more or larger images, or use train=False")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _targets(self, y, x):
        """``y`` validated as ``len(x)`` class labels in ``[0, n_classes)`` (int64)."""
        return _validate.labels(y, (x.shape[0],), self.n_classes, "y")

    def recalibrate(self, data, batch_size=RECALIBRATION_BATCH):
        """Re-estimate every ODE-block's running statistics on ``data`` (in place).

        Weights and the depth-independent batch norms are frozen. Block by block in
        order, the images of ``data`` (batches of ``batch_size``) reach the block
        through the evaluation-mode layers before it (earlier blocks already
        recalibrated); :meth:`StatefulODEBlock.batch_statistics` and
        :meth:`StatefulODEBlock.recalibrated` (float64, deterministic) give its state.

        Parameters
        ----------
        data : (n, C, H, W) array, or a tuple whose first entry is one
        batch_size : int

        Returns
        -------
        ContinuousNet
            ``self``.
        """
        x = self._inputs(data[0] if isinstance(data, (tuple, list)) else data)
        if len(x) == 0:
            raise RefodeError("`data` holds no images; pass at least one (n, C, H, W) batch")
        batch_size = _validate.positive_int(batch_size, "batch_size")
        hs = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
        for layer in self.network.layers.values():
            if isinstance(layer, StatefulODEBlock):
                records = [layer.batch_statistics(h)[1] for h in hs]
                layer.state = layer.recalibrated(records, [len(h) for h in hs])
            hs = [layer.forward(h, False)[0] for h in hs]
        return self
