"""The model protocol: what every refode model (ContinuousNet, ContinuousTagger) offers.

A model is a :class:`~refode.models._layers.Sequential` of named layers
(:attr:`Model.network`, read-only alias ``net``) some of which are ODE-blocks with
depth-dependent arrays ``(K, ...)`` on one basis, scheme and step count.

Arrays
    ``params`` (trainable) and ``state`` (running statistics), live ``{"<layer>.<array>":
    array}`` dicts; :meth:`Model.num_parameters`; :meth:`Model.ode_blocks`.
Architecture, defined once per class
    ``FAMILY`` (the name files record), ``FIELDS`` (every configuration key: its type,
    default and allowed values), :meth:`Model.shapes` (parameter, state and block
    names and shapes as a function of a configuration, before any allocation).
    :attr:`Model.config` is the plain dict of the architecture and the
    discretization; ``type(model).from_config(model.config, dtype=model.dtype)``
    rebuilds it (:mod:`refode.io` derives its HDF5 layout from these).
Compute
    :meth:`Model.check_batch`, :meth:`Model.forward`, :meth:`Model.loss`,
    :meth:`Model.loss_and_gradients` and :meth:`Model.backprop` (everything of one
    batch: loss, parameter gradients, logits, input gradient, the state the step
    stores) share one signature; ``update_state=False`` leaves the running
    statistics unchanged.
Discretization and files
    :meth:`Model.rediscretize` (:mod:`refode.models.rediscretize`),
    :meth:`Model.to_file` / :meth:`Model.from_file` (over :func:`refode.save` /
    :func:`refode.load`).
Backend
    :attr:`Model.backend`, a :class:`refode.backend.Backend`: whose kernels every layer
    runs. Both constructors take ``backend`` (``"cpu"``, the default; ``"reference"``,
    the NumPy definitions, slow; ``"cuda"``), a name or a Backend, checked by
    :func:`refode.backend.get` (a one-line RefodeError for an unknown name or an
    unusable CUDA). It is an option, not architecture: :attr:`Model.config` leaves it
    out (``from_config(cfg, backend=...)`` passes it), files record it (root attribute
    ``backend``, ``docs/format.md``) and :func:`refode.load` restores it unless told
    another. The backends agree to round-off, not bitwise.

Both constructors take ``basis`` (a family name with ``n_basis``, ``K``, default 16; or
a :class:`refode.Basis`, ``n_basis`` then left out or equal to its size) for the
depth-dependent arrays, ``scheme`` (a Runge-Kutta tableau: ``"euler"``, ``"midpoint"``,
``"rk4"``, ...), ``n_steps`` (``N``), ``seed`` (of the initialisation: every basis
function gets its own draw) and ``dtype`` (float64 or float32). Mistakes in arguments
raise :class:`~refode.errors.RefodeError` (:class:`~refode.errors.ShapeError` for
arrays and dtypes of the wrong kind).
"""
import collections

import numpy as np

from .. import _validate, limits
from ..backend import to_host
from ..bases import basis as make_basis
from ..errors import RefodeError
from . import _ops
from ._spec import count
from .rediscretize import rediscretize as _rediscretize

#: everything :meth:`Model.backprop` computes for one batch.
Backprop = collections.namedtuple("Backprop", "loss grads logits input_gradient state")


class Model:
    """Base class of refode's models (the protocol of this module's docstring).

    A subclass sets ``network``, ``basis``, ``scheme``, ``n_steps``, ``dtype`` and
    ``backend`` in its constructor, the class attributes below, and implements :meth:`shapes`,
    ``_architecture()`` (the non-discretization entries of :attr:`config`),
    ``_inputs(x, train)`` and ``_targets(y, x)``; the objective is the mean
    cross-entropy of the logits (:func:`refode.models._ops.cross_entropy`).
    """

    #: the family name written to files (``/@model``).
    FAMILY = None
    #: ``{key: Field}`` of the configuration (architecture and discretization).
    FIELDS = {}
    #: whether the model has training-mode layers (batch statistics, running state).
    STATEFUL = False
    #: the depth interval every ODE-block of the family has (None: the basis' own).
    FIXED_INTERVAL = None
    #: name of the input gradient of :meth:`backprop` (golden files).
    INPUT_GRADIENT = "x"
    #: the layer type of the ODE-blocks.
    BLOCK = None

    # ------------------------------------------------------------ architecture
    @classmethod
    def shapes(cls, config):  # pragma: no cover - interface
        """``(params, state, blocks)`` of a validated configuration: ``{name: shape}``
        twice and ``{block name: [t0, t1]}`` (ODE-block arrays lead with ``K``)."""
        raise NotImplementedError

    @classmethod
    def check_size(cls, config):
        """Refuse (RefodeError) a configuration of more than
        :data:`refode.limits.MAX_SCALARS` scalars, from its sizes alone."""
        params, state, _ = cls.shapes(config)
        limits.scalars(count(params) + count(state), f"this {cls.FAMILY}")

    @classmethod
    def choice(cls, key, value):
        """``value`` if one of ``FIELDS[key].choices``, else a RefodeError."""
        allowed = cls.FIELDS[key].choices
        if value not in allowed:
            raise RefodeError(f"unknown `{key}` {value!r:.40}; choose one of "
                              f"{', '.join(allowed)}")
        return value

    @property
    def config(self):
        """The architecture and discretization as a JSON-ready dict (``FIELDS``' keys)."""
        cfg = self._architecture()
        cfg.update({"basis": self.basis.family, "n_basis": int(self.basis.n),
                    "scheme": self.scheme if not isinstance(self.scheme, str)
                    else str(self.scheme), "n_steps": int(self.n_steps)})
        if "interval" in self.FIELDS:
            cfg["interval"] = [float(v) for v in self.basis.interval]
        return cfg

    @classmethod
    def from_config(cls, config, **options):
        """A new model of ``config`` (keys of ``FIELDS``; missing ones take their
        defaults); ``options``: the constructor's other arguments (dtype, seed, ...)."""
        unknown = sorted(set(config) - set(cls.FIELDS))
        if unknown:
            raise RefodeError(f"unknown configuration keys {', '.join(unknown):.80} for a "
                              f"{cls.FAMILY}; use {', '.join(cls.FIELDS)}")
        kw = dict(config)
        if "interval" in kw:
            kw["basis"] = make_basis(kw.get("basis", cls.FIELDS["basis"].default),
                                     kw.pop("n_basis", cls.FIELDS["n_basis"].default),
                                     tuple(kw.pop("interval")))
        return cls(**kw, **options)

    # ------------------------------------------------------------ arrays
    @property
    def net(self):
        """Read-only alias of :attr:`network` (the layer list)."""
        return self.network

    @property
    def params(self):
        """``{"<layer>.<array>": array}`` of trainable arrays (live: edit in place)."""
        return self.network.named("params")

    @property
    def state(self):
        """``{"<layer>.<array>": array}`` of running statistics (replaced by training)."""
        return self.network.named("state")

    def num_parameters(self, depth_dependent=None):
        """Trainable scalars: all (``None``), only the ODE-blocks' (``True``) or the rest."""
        blocks = self.ode_blocks()
        return int(sum(a.size for name, a in self.params.items()
                       if depth_dependent is None
                       or (name.split(".", 1)[0] in blocks) == depth_dependent))

    def ode_blocks(self):
        """``{layer name: layer}`` of the ODE-blocks, in order."""
        return {name: layer for name, layer in self.network.layers.items()
                if isinstance(layer, self.BLOCK)}

    # ------------------------------------------------------------ files
    def to_file(self, path):
        """Save to an HDF5 file (:func:`refode.save`)."""
        from ..io import save

        save(self, path)

    @classmethod
    def from_file(cls, path, backend=None):
        """The model of a file (:func:`refode.load`, ``backend`` as there); refused if of
        another family."""
        from ..io import load

        model = load(path, backend=backend)
        if not isinstance(model, cls):
            raise RefodeError(f"{path!s} holds a {type(model).__name__}, not a "
                              f"{cls.__name__}: use refode.load or "
                              f"{type(model).__name__}.from_file")
        return model

    # ------------------------------------------------------------ compute
    def check_batch(self, x, y, *, train=False):
        """Validate a batch as :meth:`loss_and_gradients` takes it, doing no other work.

        Raises the RefodeError (naming ``x`` or ``y`` and the fix) that the loss would
        raise; returns ``(x, y)`` as the model computes with them.
        """
        x = self._inputs(x, train)
        return x, self._targets(y, x)

    def _objective(self, logits, targets, gradient=True):
        """``(loss, dloss/dlogits or None)``: mean cross-entropy, ``-100`` targets skipped."""
        return _ops.cross_entropy(logits, targets, gradient, backend=self.backend)

    def _layer_options(self, x):
        """``{layer name: keyword arguments}`` of the layers' forward on inputs ``x``."""
        return {}

    def _run(self, x, train, update_state, keep_state=False):
        """``(logits, caches, state after)`` of validated ``x``; the state is restored
        unless ``update_state`` (``state after``: copies, only with ``keep_state``)."""
        train = bool(train)
        _validate.model_arrays(self)
        snapshot = ([(leaf, dict(leaf.state)) for leaf in self.network.leaves()]
                    if train and not update_state else [])
        try:
            logits, caches = self.network.forward(self.backend.to_device(x), train,
                                                  self._layer_options(x))
            after = ({k: np.array(v) for k, v in self.state.items()}
                     if keep_state and train else None)
        finally:
            for leaf, state in snapshot:
                leaf.state = state
        return logits, caches, after

    def forward(self, x, train=False, *, update_state=True):
        """Logits of the inputs ``x`` (``train``, ``update_state``: as in
        :meth:`loss_and_gradients`; a PyTorch training-mode forward updates the state too)."""
        return to_host(self._run(self._inputs(x, train), train, update_state)[0])

    def loss(self, x, y, *, train=True):
        """The loss of :meth:`loss_and_gradients` without gradients; never updates the
        running statistics (``train`` only matters for a ``STATEFUL`` model)."""
        x, y = self.check_batch(x, y, train=train)
        logits = self._run(x, bool(train) and self.STATEFUL, False)[0]
        return self._objective(logits, y, gradient=False)[0]

    def backprop(self, x, y, *, train=True, update_state=True):
        """Everything of one batch: loss, gradients, logits, input gradient, new state.

        Arguments as :meth:`loss_and_gradients`.

        Returns
        -------
        Backprop
            ``loss`` (float), ``grads`` (the names and shapes of :attr:`params`),
            ``logits``, ``input_gradient`` (of the loss with respect to the input, or
            for the tagger the embedded tokens: ``INPUT_GRADIENT`` names it) and
            ``state`` (training mode: copies of the running statistics the step stores
            (or would store with ``update_state=False``); evaluation mode: None).
        """
        return self._step(x, y, train, update_state, keep_state=True)

    def _step(self, x, y, train, update_state, keep_state=False):
        x, y = self.check_batch(x, y, train=train)   # before any work
        logits, caches, after = self._run(x, train, update_state, keep_state)
        loss, dlogits = self._objective(logits, y)
        dx, grads = self.network.backward(caches, dlogits)
        if self.backend.device:   # the API boundary: results back to the host
            grads, logits, dx = {k: to_host(v) for k, v in grads.items()}, to_host(logits), \
                to_host(dx)
        return Backprop(loss, grads, logits, dx, after)

    def loss_and_gradients(self, x, y, *, train=True, update_state=True, return_logits=False):
        """Mean cross-entropy and its exact (discrete-adjoint) gradient for every parameter.

        Parameters
        ----------
        x, y : a batch as the model takes it (validated before any work, see the class)
        train : bool
            Training mode (batch statistics; default) or evaluation mode.
        update_state : bool
            In training mode, update the running statistics as a training step of
            PyTorch would (default) or leave them unchanged.
        return_logits : bool
            Also return the logits the loss was computed from (free).

        Returns
        -------
        loss : float
        grads : dict, the names and shapes of :attr:`params`
        logits : array, only with ``return_logits=True``
        """
        step = self._step(x, y, train, update_state)
        return (step.loss, step.grads) + ((step.logits,) if return_logits else ())

    rediscretize = _rediscretize
