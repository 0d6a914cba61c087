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
import copy

import numpy as np

from .. import _validate, limits
from ..bases import basis as make_basis
from ..errors import RefodeError, ShapeError
from . import _ops
from ._layers import Sequential
from .layers import (PADDINGS, SYMMETRIC, BatchNorm, Composite, Conv, Dense, GlobalAvgPool,
                     ReLU, Stitch, he_normal)
from .stateful import StatefulODEBlock, init_params, init_state

#: strides of the stitch units: the first keeps the resolution, the others halve it.
FIRST_STRIDE, LATER_STRIDE = 1, 2
#: change-of-basis methods of :meth:`ContinuousNet.rediscretize`.
METHODS = ("projection", "interpolation")
#: policies of :meth:`ContinuousNet.rediscretize` for the running statistics.
STATS_POLICIES = ("project", "recalibrate", "positive")
#: images per forward pass when statistics are recalibrated on data.
RECALIBRATION_BATCH = 128
#: activations between the head batch norm and the pool: none (the paper's code) or ReLU.
NO_ACTIVATION, RELU = "none", "relu"
HEAD_ACTIVATIONS = (NO_ACTIVATION, RELU)


def _scale(value, name):
    """A finite float (a residual scale), or a RefodeError naming ``name``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RefodeError(f"`{name}` must be a real number, got {value!r:.40}") from None
    if isinstance(value, (bool, complex)) or not np.isfinite(out):
        raise RefodeError(f"`{name}` must be a finite real number, got {value!r:.40}")
    return out


def check_size(in_channels, n_classes, widths, n_basis):
    """Refuse (RefodeError) a ContinuousNet of more than
    :data:`refode.limits.MAX_SCALARS` scalars, from its sizes alone (nothing allocated)."""
    from ..io import layout   # the file layout counts the arrays of a configuration

    cfg = {"in_channels": in_channels, "n_classes": n_classes, "widths": list(widths),
           "n_basis": n_basis}
    params, state, _ = layout.shapes(layout.CONTINUOUS_NET, cfg)
    limits.scalars(layout.count(params) + layout.count(state), "this ContinuousNet")


def _leaves(layer):
    """Every layer without sub-layers inside ``layer``."""
    if isinstance(layer, Sequential):
        for sub in layer.layers.values():
            yield from _leaves(sub)
    elif isinstance(layer, Composite):
        for sub in layer.parts.values():
            yield from _leaves(sub)
    else:
        yield layer


class ContinuousNet:
    """Convolutional ContinuousNet with stateful (continuous-in-depth) batch norm.

    Parameters
    ----------
    in_channels, n_classes : int
    widths : tuple of int
        Channels of each stage (one stitch + one ODE-block per width).
    basis : str
        Basis family of the depth-dependent weights and statistics (interval ``[0, 1]``).
    n_basis : int
        ``K``.
    scheme : str
        Runge-Kutta tableau of the ODE-blocks.
    n_steps : int
        ``N``.
    seed : int
        Seed of the initialisation (every basis function drawn independently).
    dtype : float64 or float32
    head_activation : {"none", "relu"}
        Activation between the head batch norm and the pool: none (the paper's code,
        default) or ReLU (what refode's format-version-1 files mean).
    padding : {"symmetric", "same"}
        Zero padding of the convolutions: ``k // 2`` on every side (PyTorch's
        ``padding=1``, default) or Flax/TensorFlow ``'SAME'`` (the paper's code), which
        pads the stride-2 3x3 convolutions of the stitch units ``(0, 1)`` on even sizes.
    rate_scale : float
        The ODE-blocks integrate ``dh/dt = rate_scale * R(theta(t), h)`` (the original's
        ``epsilon``; default 1).
    stitch_scale : float
        Stitch units output ``shortcut(x) + stitch_scale * branch(x)`` (the original's
        ``stitch_epsilon``; default 1).

    Attributes
    ----------
    net : Sequential
        The layers: ``stem_conv, stem_bn, stem_relu, stitch1, block1, ..., head_bn,
        [head_relu,] pool, dense``.
    """

    def __init__(self, in_channels=3, n_classes=10, widths=(16, 32, 64),
                 basis="piecewise_constant", n_basis=16, scheme="euler", n_steps=16, seed=0,
                 dtype=np.float64, *, head_activation=NO_ACTIVATION, padding=SYMMETRIC,
                 rate_scale=1.0, stitch_scale=1.0):
        in_channels = _validate.positive_int(in_channels, "in_channels")
        n_classes = _validate.positive_int(n_classes, "n_classes")
        if not 1 <= len(widths) <= limits.MAX_STAGES:
            raise RefodeError(f"`widths` must hold 1 to {limits.MAX_STAGES} widths, e.g. "
                              f"(16, 32, 64), got {len(widths)}")
        widths = tuple(_validate.positive_int(w, "widths") for w in widths)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise RefodeError(f"`dtype` must be float64 or float32, got {self.dtype}")
        if head_activation not in HEAD_ACTIVATIONS:
            raise RefodeError(f"unknown `head_activation` {head_activation!r:.40}; choose one "
                              f"of {', '.join(HEAD_ACTIVATIONS)}")
        if padding not in PADDINGS:
            raise RefodeError(f"unknown `padding` {padding!r:.40}; choose one of "
                              f"{', '.join(PADDINGS)}")
        self.head_activation, self.padding = head_activation, padding
        self.rate_scale = _scale(rate_scale, "rate_scale")
        self.stitch_scale = _scale(stitch_scale, "stitch_scale")
        self.basis = make_basis(basis, n_basis)
        self.scheme, self.n_steps = scheme, limits.n_steps(n_steps)
        check_size(in_channels, n_classes, widths, self.basis.n)
        rng = np.random.default_rng(seed)
        dt = self.dtype
        layers = [
            ("stem_conv", Conv(he_normal(rng, (widths[0], in_channels, 3, 3), dt), 1,
                               padding)),
            ("stem_bn", BatchNorm(widths[0], dt)),
            ("stem_relu", ReLU()),
        ]
        c_in = widths[0]
        for j, width in enumerate(widths, start=1):
            stride = FIRST_STRIDE if j == 1 else LATER_STRIDE
            layers.append((f"stitch{j}", Stitch(c_in, width, stride, rng, dt, padding,
                                                self.stitch_scale)))
            layers.append((f"block{j}", StatefulODEBlock(
                self.basis, scheme, self.n_steps, init_params(self.basis, width, rng, dt),
                init_state(self.basis, width, dt), rate_scale=self.rate_scale)))
            c_in = width
        layers.append(("head_bn", BatchNorm(c_in, dt)))
        if head_activation == RELU:
            layers.append(("head_relu", ReLU()))
        layers += [("pool", GlobalAvgPool()), ("dense", Dense.uniform(c_in, n_classes, rng, dt))]
        self.net = Sequential(layers)

    # ------------------------------------------------------------ arrays
    @property
    def params(self):
        """``{"<layer>.<array>": array}`` of trainable arrays (live: edit in place)."""
        return self.net.named("params")

    @property
    def state(self):
        """``{"<layer>.<array>": array}`` of running statistics (replaced by training)."""
        return self.net.named("state")

    def num_parameters(self):
        """Number of trainable scalars."""
        return int(sum(a.size for a in self.params.values()))

    def blocks(self):
        """The :class:`StatefulODEBlock` layers, in order."""
        return [l for l in self.net.layers.values() if isinstance(l, StatefulODEBlock)]

    # ------------------------------------------------------------ compute
    @property
    def in_channels(self):
        """Channels of the input images (of the stem convolution's weight)."""
        return int(self.net.layers["stem_conv"].params["weight"].shape[1])

    @property
    def n_classes(self):
        """Classes of the output (rows of the dense layer's weight)."""
        return int(self.net.layers["dense"].params["weight"].shape[0])

    def _input(self, x, train=False):
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

    def _labels(self, y, n):
        """``y`` validated as ``n`` class labels in ``[0, n_classes)`` (int64)."""
        return _validate.labels(y, (n,), self.n_classes, "y")

    def check_batch(self, x, y, *, train=False):
        """Validate a batch as :meth:`loss_and_gradients` takes it, doing no other work.

        Raises the RefodeError (naming ``x`` or ``y`` and the fix) that the loss would
        raise; returns ``(x, y)`` as the model computes with them.
        """
        x = self._input(x, train)
        return x, self._labels(y, x.shape[0])

    def _snapshot(self):
        return [(leaf, dict(leaf.state)) for leaf in _leaves(self.net)]

    @staticmethod
    def _restore(snapshot):
        for leaf, state in snapshot:
            leaf.state = state

    def forward(self, x, train=False, *, update_state=True):
        """Logits ``(N, n_classes)`` of images ``x (N, C, H, W)``.

        ``train=True`` normalises with batch statistics and (unless
        ``update_state=False``) updates the running statistics, as a PyTorch
        training-mode forward does.
        """
        x = self._input(x, train)
        snapshot = None if update_state else self._snapshot()
        try:
            logits, _ = self.net.forward(x, bool(train))
        finally:
            if snapshot is not None:
                self._restore(snapshot)
        return logits

    def loss(self, x, y, *, train=True):
        """Mean cross-entropy; never updates the running statistics.

        Arguments as :meth:`loss_and_gradients` (validated before any work).
        """
        x, y = self.check_batch(x, y, train=train)
        return _ops.cross_entropy(self.forward(x, train, update_state=False), y)[0]

    def loss_and_gradients(self, x, y, *, train=True, update_state=True, return_logits=False):
        """Mean cross-entropy and its exact gradient for every parameter.

        Parameters
        ----------
        x : (N, C, H, W) images, float32 or float64 (``C = in_channels``, ``N >= 1``)
        y : (N,) int class labels in ``[0, n_classes)`` (any integer dtype; floats,
            booleans, other shapes and out-of-range labels raise RefodeError)
        train : bool
            Training mode (batch statistics; default) or evaluation mode.
        update_state : bool
            In training mode, update the running statistics as a training step of
            PyTorch would (default) or leave them unchanged.
        return_logits : bool
            Also return the logits the loss was computed from (free: e.g. for a
            running training accuracy).

        Returns
        -------
        loss : float
        grads : dict, the names and shapes of :attr:`params`
        logits : (N, n_classes) array, only with ``return_logits=True``
        """
        x, y = self.check_batch(x, y, train=train)   # before any work
        snapshot = None if (update_state or not train) else self._snapshot()
        try:
            logits, caches = self.net.forward(x, bool(train))
        finally:
            if snapshot is not None:
                self._restore(snapshot)
        loss, dlogits = _ops.cross_entropy(logits, y)
        _, grads = self.net.backward(caches, dlogits)
        if return_logits:
            return loss, grads, logits
        return loss, grads

    # ------------------------------------------------------------ discretisation
    def rediscretize(self, basis=None, n_basis=None, scheme=None, n_steps=None,
                     method="projection", *, stats="project", data=None,
                     batch_size=RECALIBRATION_BATCH):
        """A new model with every depth-dependent array moved exactly onto a new basis.

        Compression (fewer basis functions), refinement (e.g. ``n_basis`` doubled on a
        ``piecewise_constant`` or ``fem_linear`` basis: exact, ``theta(t)`` unchanged)
        and graph shortening (``n_steps``) in one call. Weights *and* running
        statistics of every ODE-block move with ``method``: ``"projection"`` (exact
        L2 projection, :func:`refode.project`) or ``"interpolation"``
        (:func:`refode.interpolate`). Depth-independent arrays are copied. The model
        itself is not modified.

        Parameters
        ----------
        basis : str, optional
            New family (default: the current one).
        n_basis, n_steps : int, optional
            New ``K`` and ``N`` (default: the current ones).
        scheme : str, optional
            New tableau (default: the current one).
        method : {"projection", "interpolation"}
        stats : {"project", "recalibrate", "positive"}
            Running statistics of the ODE-blocks after the change of basis:

            - ``"project"`` (default): moved by ``method`` like the weights (a moved
              variance can become negative at a stage: warned);
            - ``"recalibrate"``: re-estimated on ``data`` in the new basis and grid,
              weights frozen, block by block in order (:meth:`recalibrate`);
            - ``"positive"``: means moved by ``method``, variances moved in the log
              domain and mapped back, which keeps them positive (a departure from
              the plain L2 projection: :func:`refode.models.stateful.positive_variance`).
        data : (n, C, H, W) array, or a tuple whose first entry is one
            Images of ``stats="recalibrate"`` (labels are not needed).
        batch_size : int
            Images per forward pass of the recalibration.

        Returns
        -------
        ContinuousNet
        """
        if method not in METHODS:
            raise RefodeError(f"unknown `method` {method!r}; choose one of {', '.join(METHODS)}")
        if stats not in STATS_POLICIES:
            raise RefodeError(f"unknown `stats` {stats!r:.40}; choose one of "
                              f"{', '.join(STATS_POLICIES)}")
        if stats == "recalibrate" and data is None:
            raise RefodeError("`stats='recalibrate'` needs `data`: pass images (n, C, H, W) "
                              "to re-estimate the running statistics on")
        if stats != "recalibrate" and data is not None:
            raise RefodeError(f"`data` is only used by stats='recalibrate', got stats={stats!r}")
        target = make_basis(basis or self.basis.family,
                            self.basis.n if n_basis is None else n_basis)
        new_steps = self.n_steps if n_steps is None else limits.n_steps(n_steps)
        check_size(self.in_channels, self.n_classes,
                   [b.params["conv1.weight"].shape[1] for b in self.blocks()], target.n)
        new = copy.deepcopy(self)
        new.basis, new.n_steps = target, new_steps
        new.scheme = self.scheme if scheme is None else scheme
        for name, layer in new.net.layers.items():
            if isinstance(layer, StatefulODEBlock):
                new.net.layers[name] = layer.rebased(new.basis, new.scheme, new.n_steps, method,
                                                     stats)
        if stats == "recalibrate":
            new.recalibrate(data, batch_size)
        return new

    def recalibrate(self, data, batch_size=RECALIBRATION_BATCH):
        """Re-estimate every ODE-block's running statistics on ``data`` (in place).

        Weights and the depth-independent batch norms are frozen. Block by block in
        order, the images of ``data`` (batches of ``batch_size``) reach the block
        through the evaluation-mode layers before it (earlier blocks already
        recalibrated); a training-mode forward of the block gives the batch
        statistics at every stage (:meth:`StatefulODEBlock.batch_statistics`), whose
        batch-size-weighted average is fitted onto the basis by the stage-point
        least squares of training (:meth:`StatefulODEBlock.recalibrated`).
        Deterministic; the averages and the fit are float64.

        Parameters
        ----------
        data : (n, C, H, W) array, or a tuple whose first entry is one
        batch_size : int

        Returns
        -------
        ContinuousNet
            ``self``.
        """
        x = data[0] if isinstance(data, (tuple, list)) else data
        x = self._input(x)
        if len(x) == 0:
            raise RefodeError("`data` holds no images; pass at least one (n, C, H, W) batch")
        batch_size = _validate.positive_int(batch_size, "batch_size")
        hs = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
        for layer in self.net.layers.values():
            if isinstance(layer, StatefulODEBlock):
                records = [layer.batch_statistics(h)[1] for h in hs]
                layer.state = layer.recalibrated(records, [len(h) for h in hs])
            hs = [layer.forward(h, False)[0] for h in hs]
        return self
