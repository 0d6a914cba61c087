"""The transformer-encoder ODE-Net sentence tagger (paper, section 5).

``ids (B, L) -> embed (no sqrt(D) scaling) + sinusoidal positions -> ODE-block of an
encoder rate on [0, 1] -> LayerNorm -> dense over tags -> logits (B, L, n_tags)``.

Padding (``ids == padding_id``) is a key padding mask in every attention, and padded
positions have a zero rate, so their state stays ``embedding + position`` and never
influences the other positions; the loss ignores targets equal to ``-100``.
"""
import numpy as np

from .. import _validate, kernels, limits
from ..bases import Basis, basis as make_basis
from ..errors import RefodeError, ShapeError
from ..integrate.tableau import tableau
from ..projection import interpolate, project
from ._layers import Sequential
from .layers import Dense
from .tagger_layers import EncoderODEBlock, LayerNorm, TokenEmbedding
from .transformer import LN_EPS, make_rate

#: target value that does not count in the loss (PyTorch's ``ignore_index``).
from ..constants import IGNORE_INDEX
#: name of the ODE-block layer; its arrays are ``"ode.<weight>"`` with leading axis K.
ODE = "ode"
#: default number of basis functions (and of steps when ``n_steps`` is left out).
DEFAULT_N_BASIS = 16
#: change-of-basis methods of :meth:`ContinuousTagger.rediscretize`.
REDISCRETIZE = {"projection": project, "interpolation": interpolate}


class ContinuousTagger:
    """Sentence tagger with a continuous-in-depth transformer encoder.

    Parameters
    ----------
    vocab_size, n_tags : int
    width : int
        ``D`` (paper: 128).
    heads : int
        Attention heads dividing ``width`` (paper: 1).
    ffn : int
        Hidden width of the MLP (paper: 128).
    basis : str or refode.Basis
        Basis family of the depth-dependent weights (on [0, 1] for a name).
    n_basis : int, optional
        ``K`` (default 16; must match a given Basis).
    scheme : str
        Runge-Kutta tableau (``"euler"``, ``"midpoint"``, ``"rk4"``, ...).
    n_steps : int, optional
        ``N`` (default ``K``).
    seed : int
        Seed of the initialisation (every basis function gets its own draw).
    dtype : float64 or float32
    padding_id : int
        Token id of padding.
    rate : {"paper", "pre_ln"}
        :class:`~refode.models.transformer.PaperEncoderRate` or
        :class:`~refode.models.transformer.PreLNEncoderRate`.
    attention_bias : bool
        Biases on the Q/K/V/O projections (the paper has none).
    backend : str
        Kernel backend (``"cpu"``).
    ln_eps : float
        Regulariser of every layer norm (default 1e-5, PyTorch's; the paper's Flax code
        uses 1e-6).

    Notes
    -----
    Initialisation: embedding ``N(0, 1)``; encoder as
    :meth:`~refode.models.transformer.PaperEncoderRate.init`; final layer norm
    ``gamma = 1, beta = 0``; output dense uniform in ``+-1/sqrt(D)``.
    """

    def __init__(self, vocab_size, n_tags, width=128, heads=1, ffn=128,
                 basis="piecewise_constant", n_basis=None, scheme="euler", n_steps=None,
                 seed=0, dtype=np.float64, padding_id=0, rate="paper", attention_bias=False,
                 backend="cpu", ln_eps=LN_EPS):
        self.vocab_size = _validate.positive_int(vocab_size, "vocab_size")
        self.n_tags = _validate.positive_int(n_tags, "n_tags")
        self.dtype = np.dtype(dtype)
        if self.dtype not in _validate.FLOAT_DTYPES:
            raise ShapeError(f"`dtype` must be float32 or float64, got {self.dtype}")
        self.padding_id = int(padding_id)
        self.backend = backend
        self.rate = make_rate(rate, width, heads, ffn, attention_bias=attention_bias,
                              backend=backend, ln_eps=ln_eps)
        self.ln_eps = self.rate.ln_eps
        self.rate_kind = rate
        self.basis = _resolve_basis(basis, n_basis)
        tableau(scheme)  # validates the name before any work
        self.scheme = scheme
        self.n_steps = limits.n_steps(self.basis.n if n_steps is None else n_steps)
        check_size(self.vocab_size, self.n_tags, self.rate, self.basis.n)
        rng = np.random.default_rng(seed)
        d = self.rate.width
        self.network = Sequential([
            ("embed", TokenEmbedding(
                rng.standard_normal((self.vocab_size, d)).astype(self.dtype), backend)),
            (ODE, EncoderODEBlock(self.rate, self.rate.init(rng, self.basis.n, self.dtype),
                                  self.basis, self.scheme, self.n_steps)),
            ("norm", LayerNorm(np.ones(d, self.dtype), np.zeros(d, self.dtype), backend,
                               self.ln_eps)),
            ("head", Dense.uniform(d, self.n_tags, rng, self.dtype, backend)),
        ])

    # -------------------------------------------------------------- arrays
    @property
    def params(self):
        """``{"<layer>.<array>": array}``: the live trainable arrays (edit in place)."""
        return self.network.named("params")

    @property
    def state(self):
        """Non-trainable arrays: none (the tagger has no batch norm)."""
        return self.network.named("state")

    def num_parameters(self, depth_dependent=None):
        """Trainable numbers: all (``None``), only the ODE-block's (``True``) or the rest."""
        return int(sum(
            a.size for name, a in self.params.items()
            if depth_dependent is None or name.startswith(f"{ODE}.") == depth_dependent))

    # ------------------------------------------------------------ compute
    def _ids(self, x):
        ids = np.asarray(x)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ShapeError(
                f"`x` must be token ids of shape (batch, length) and integer dtype, got "
                f"shape {ids.shape} dtype {ids.dtype}; pass np.asarray(ids, dtype=np.int64)")
        if ids.size == 0:
            raise ShapeError(
                f"`x` has shape {ids.shape}: no sentences or no tokens; pass at least one "
                "sentence of at least one token (batch >= 1, length >= 1)")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise RefodeError(
                f"`x` holds token ids outside [0, {self.vocab_size}); map unknown tokens to "
                "a valid id")
        return ids.astype(np.int64, copy=False)

    def check_batch(self, x, y):
        """Validate a batch as :meth:`loss_and_gradients` takes it, doing no other work.

        Raises the RefodeError (naming ``x`` or ``y`` and the fix) that the loss would
        raise; returns ``(ids, targets)`` as int64 arrays.
        """
        ids = self._ids(x)
        return ids, self._targets(y, ids)

    def _run(self, x, train):
        ids = self._ids(x)   # idempotent on validated ids
        mask = ids == self.padding_id
        self.network.layers[ODE].mask = mask if mask.any() else None
        logits, caches = self.network.forward(ids, train)
        return ids, logits, caches

    def forward(self, x, train=False):
        """Logits ``(B, L, n_tags)`` of token ids ``x`` (B, L) int64.

        Rows of padded positions are finite and carry no meaning.
        """
        return self._run(x, train)[1]

    def loss(self, x, y):
        """Mean token cross-entropy over non-padded positions (no gradients).

        Arguments as :meth:`loss_and_gradients`; returns a float.
        """
        ids, targets = self.check_batch(x, y)   # before any work
        ids, logits, _ = self._run(ids, False)
        loss = np.zeros((), dtype=logits.dtype)
        kernels.get("cross_entropy", self.backend)(logits, targets, loss, IGNORE_INDEX)
        return float(loss)

    def loss_and_gradients(self, x, y, *, return_logits=False):
        """Mean token cross-entropy over non-padded positions and its exact gradients.

        Parameters
        ----------
        x : (B, L) int64 token ids in ``[0, vocab_size)`` (``B, L >= 1``)
        y : (B, L) int64 tags in ``[0, n_tags)``, ``-100`` at padding (and wherever a
            token should not count); any integer dtype, other dtypes, shapes and
            values raise RefodeError. When every target is ``-100`` the loss and the
            gradients are 0 (the cross-entropy kernels' convention)
        return_logits : bool
            Also return the logits the loss was computed from (free: e.g. for a
            running training accuracy).

        Returns
        -------
        loss : float
        grads : dict, the names and shapes of :attr:`params`
            Exact (discrete-adjoint) gradients of the computed loss.
        logits : (B, L, n_tags) array, only with ``return_logits=True``
        """
        ids, targets = self.check_batch(x, y)   # before any work
        ids, logits, caches = self._run(ids, True)
        ce = kernels.get("cross_entropy", self.backend)
        loss = np.zeros((), dtype=logits.dtype)
        ce(logits, targets, loss, IGNORE_INDEX)
        dlogits = np.empty_like(logits)
        kernels.get("cross_entropy.cross_entropy_vjp", self.backend)(
            logits, targets, 1.0, dlogits, IGNORE_INDEX)
        _, grads = self.network.backward(caches, dlogits)
        if return_logits:
            return float(loss), grads, logits
        return float(loss), grads

    def _targets(self, y, ids):
        t = np.ascontiguousarray(_validate.labels(y, ids.shape, self.n_tags, "y",
                                                  IGNORE_INDEX, "tags"))
        if np.any(t[ids == self.padding_id] != IGNORE_INDEX):
            raise RefodeError(
                f"`y` counts padded positions (x == padding_id {self.padding_id}); set their "
                "targets to -100")
        return t

    # ------------------------------------------------------ rediscretize
    def rediscretize(self, basis=None, n_basis=None, scheme=None, n_steps=None,
                     method="projection"):
        """A new tagger whose depth-dependent weights live on another basis / grid.

        Every ``"ode.*"`` array ``(K, ...)`` is mapped onto the new basis by exact L2
        projection (:func:`refode.project`, ``method="projection"``) or by
        interpolation at the new basis' nodes (:func:`refode.interpolate`); the other
        arrays are copied. ``basis`` (family name or Basis) defaults to the current
        family, ``n_basis`` to the current ``K``, ``scheme`` to the current one, and
        ``n_steps`` to the current ``N`` (so compressing ``K`` keeps the step count;
        pass ``n_steps`` to shorten the graph). ``self`` is not modified.

        Refinement (piecewise constant ``K -> 2K``, FEM ``K -> 2K - 1``) represents the
        same ``theta(t)`` and leaves the outputs unchanged; projection ``K -> K/2``
        halves the depth-dependent parameter count.

        Returns
        -------
        ContinuousTagger
        """
        if method not in REDISCRETIZE:
            raise RefodeError(
                f"unknown `method` {method!r}; choose one of {', '.join(REDISCRETIZE)}")
        if isinstance(basis, Basis):
            target = _resolve_basis(basis, n_basis)
        else:
            family = self.basis.family if basis is None else basis
            target = make_basis(family, self.basis.n if n_basis is None else n_basis,
                                self.basis.interval)
        new = object.__new__(ContinuousTagger)
        new.__dict__.update(self.__dict__)
        new.basis = target
        new.scheme = self.scheme if scheme is None else scheme
        tableau(new.scheme)  # validates the name
        new.n_steps = limits.n_steps(self.n_steps if n_steps is None else n_steps)
        check_size(self.vocab_size, self.n_tags, self.rate, target.n)
        change = REDISCRETIZE[method]
        old = self.network.layers
        coefficients = {k: np.ascontiguousarray(change(v, self.basis, target))
                        for k, v in old[ODE].params.items()}
        new.network = Sequential([
            ("embed", TokenEmbedding(old["embed"].params["weight"].copy(), self.backend)),
            (ODE, EncoderODEBlock(self.rate, coefficients, target, new.scheme, new.n_steps)),
            ("norm", LayerNorm(*(old["norm"].params[k].copy() for k in ("gamma", "beta")),
                               self.backend, self.ln_eps)),
            ("head", Dense(*(old["head"].params[k].copy() for k in ("weight", "bias")),
                           self.backend)),
        ])
        return new


def check_size(vocab_size, n_tags, rate, n_basis):
    """Refuse (RefodeError) a tagger of more than :data:`refode.limits.MAX_SCALARS`
    scalars, from its sizes alone (nothing allocated)."""
    from ..io import layout   # the file layout counts the arrays of a configuration

    cfg = {"vocab_size": vocab_size, "n_tags": n_tags, "width": rate.width, "ffn": rate.ffn,
           "n_basis": n_basis, "attention_bias": rate.attention_bias, "interval": [0, 1]}
    params, _, _ = layout.shapes(layout.TAGGER, cfg)
    limits.scalars(layout.count(params), "this ContinuousTagger")


def _resolve_basis(basis, n_basis):
    """A :class:`refode.Basis` from a family name (on [0, 1]) or a Basis."""
    if isinstance(basis, Basis):
        if n_basis is not None and n_basis != basis.n:
            raise RefodeError(
                f"`n_basis` ({n_basis}) differs from the given basis' size {basis.n}; "
                "leave `n_basis` out")
        return basis
    return make_basis(basis, DEFAULT_N_BASIS if n_basis is None else n_basis)
