"""The transformer-encoder ODE-Net sentence tagger (paper, section 5).

``ids (B, L) -> embed (no sqrt(D) scaling) + sinusoidal positions -> ODE-block of an
encoder rate on [0, 1] -> LayerNorm -> dense over tags -> logits (B, L, n_tags)``.

Padding (``ids == padding_id``) is masked as :mod:`refode.models.transformer` says (a
padded state stays ``embedding + position``); the loss ignores targets equal to ``-100``.
"""
import numpy as np

from .. import _validate
from ..backend import get as get_backend
from ..constants import IGNORE_INDEX  # noqa: F401  (target value the loss skips; re-exported)
from ..errors import RefodeError, ShapeError
from ._layers import Sequential
from .layers import Dense
from ._spec import REQUIRED, Field, check_dtype
from .protocol import Model
from .rediscretize import discretization
from .tagger_layers import EncoderODEBlock, LayerNorm, TokenEmbedding
from .transformer import LN_EPS, RATES, weight_shapes

#: name of the ODE-block layer; its arrays are ``"ode.<weight>"`` with leading axis K.
ODE = "ode"
#: default number of basis functions (and of steps when ``n_steps`` is left out).
DEFAULT_N_BASIS = 16


class ContinuousTagger(Model):
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
    basis, n_basis, scheme, n_steps, seed, dtype
        As every model's (:mod:`refode.models.protocol`); a family name is on ``[0, 1]``;
        ``n_steps`` defaults to ``K``.
    padding_id : int
        Token id of padding.
    rate : {"paper", "pre_ln"}
        :class:`~refode.models.transformer.PaperEncoderRate` or
        :class:`~refode.models.transformer.PreLNEncoderRate`.
    attention_bias : bool
        Biases on the Q/K/V/O projections (the paper has none).
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend
        See :class:`~refode.models.protocol.Model`.
    ln_eps : float
        Regulariser of every layer norm (default 1e-5, PyTorch's; the paper's Flax code
        uses 1e-6).

    Attributes
    ----------
    network : Sequential
        The layers ``embed, ode, norm, head`` (read-only alias ``net``).
    backend : refode.backend.Backend

    Notes
    -----
    The protocol (arrays, config, forward, loss, gradients, rediscretize, files) is
    :class:`~refode.models.protocol.Model`'s. Inputs ``x`` are ``(B, L)`` token ids in
    ``[0, vocab_size)`` (any integer dtype, ``B, L >= 1``); targets ``y (B, L)`` are
    tags in ``[0, n_tags)`` with ``-100`` at padding (and wherever a token should not
    count); the loss is the mean token cross-entropy over the counted positions (0,
    with zero gradients, when none counts). The tagger has no training-mode layers:
    ``train`` only selects whether the ODE-block keeps its stages for the backward
    pass (the same exact gradient), and ``update_state`` changes nothing.

    Initialisation: embedding ``N(0, 1)``; encoder as
    :meth:`~refode.models.transformer.PaperEncoderRate.init`; final layer norm
    ``gamma = 1, beta = 0``; output dense uniform in ``+-1/sqrt(D)``.
    """

    FAMILY = "ContinuousTagger"
    FIELDS = {"vocab_size": Field(int, REQUIRED), "n_tags": Field(int, REQUIRED),
              "width": Field(int, 128), "heads": Field(int, 1), "ffn": Field(int, 128),
              "basis": Field(str, "piecewise_constant"), "n_basis": Field(int, DEFAULT_N_BASIS),
              "interval": Field(list, [0.0, 1.0]), "scheme": Field(str, "euler"),
              "n_steps": Field(int, None), "padding_id": Field(int, 0),
              "rate": Field(str, "paper", tuple(RATES)), "attention_bias": Field(bool, False),
              "ln_eps": Field(float, LN_EPS)}
    INPUT_GRADIENT = "embedded"
    BLOCK = EncoderODEBlock

    def __init__(self, vocab_size, n_tags, width=128, heads=1, ffn=128,
                 basis="piecewise_constant", n_basis=None, scheme="euler", n_steps=None,
                 seed=0, dtype=np.float64, padding_id=0, rate="paper", attention_bias=False,
                 backend="cpu", ln_eps=LN_EPS):
        self.vocab_size = _validate.positive_int(vocab_size, "vocab_size")
        self.n_tags = _validate.positive_int(n_tags, "n_tags")
        self.dtype = check_dtype(dtype)
        self.padding_id = int(padding_id)
        self.backend = backend = get_backend(backend)
        self.rate = RATES[self.choice("rate", rate)](
            width, heads, ffn, attention_bias=attention_bias, backend=backend, ln_eps=ln_eps)
        self.ln_eps = self.rate.ln_eps
        self.rate_kind = rate
        self.basis, self.scheme, self.n_steps = discretization(
            type(self), basis, n_basis, scheme, n_steps, DEFAULT_N_BASIS)
        self.check_size({**self._architecture(), "n_basis": self.basis.n,
                         "interval": list(self.basis.interval)})
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

    # ------------------------------------------------------------ architecture
    @classmethod
    def shapes(cls, config):
        """``(params, state, blocks)`` of a configuration (see
        :meth:`refode.models.protocol.Model.shapes`); reads ``vocab_size``, ``n_tags``,
        ``width``, ``ffn``, ``n_basis``, ``attention_bias`` and ``interval``."""
        d, k = config["width"], config["n_basis"]
        rate = weight_shapes(d, config["ffn"], config["attention_bias"])
        params = {"embed.weight": (config["vocab_size"], d)}
        params.update({f"{ODE}.{name}": (k, *shape) for name, shape in rate.items()})
        params.update({"norm.gamma": (d,), "norm.beta": (d,),
                       "head.weight": (config["n_tags"], d), "head.bias": (config["n_tags"],)})
        return params, {}, {ODE: list(config["interval"])}

    def _architecture(self):
        rate = self.rate
        return {"vocab_size": self.vocab_size, "n_tags": self.n_tags, "width": rate.width,
                "heads": rate.heads, "ffn": rate.ffn, "padding_id": int(self.padding_id),
                "rate": str(self.rate_kind), "attention_bias": bool(rate.attention_bias),
                "ln_eps": float(self.ln_eps)}

    # ------------------------------------------------------------ compute
    def _inputs(self, x, train=False):
        """``x`` validated as token ids ``(B, L)`` in ``[0, vocab_size)`` (int64)."""
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

    def _targets(self, y, ids):
        """``y`` validated as tags of ``ids``: ``-100`` at every padded position."""
        t = np.ascontiguousarray(_validate.labels(y, ids.shape, self.n_tags, "y",
                                                  IGNORE_INDEX, "tags"))
        if np.any(t[ids == self.padding_id] != IGNORE_INDEX):
            raise RefodeError(
                f"`y` counts padded positions (x == padding_id {self.padding_id}); set their "
                "targets to -100")
        return t

    def _layer_options(self, ids):
        """The key padding mask of the ODE-block for ``ids`` (None without padding)."""
        mask = ids == self.padding_id
        return {ODE: {"mask": mask if mask.any() else None}}
