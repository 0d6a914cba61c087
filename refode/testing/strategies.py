"""Hypothesis strategies for refode's objects (test-time only: needs ``hypothesis``).

Every strategy is a function returning a ``hypothesis`` strategy; the arguments bound the
sizes so that examples stay small. Use them in another project's property tests::

    from hypothesis import given
    from refode.testing import strategies as rst

    @given(rst.bases(max_n=6), rst.step_counts())
    def test_my_integrator(basis, n_steps):
        ...
"""
import itertools
import os
import tempfile
from fractions import Fraction

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("refode.testing.strategies needs hypothesis: pip install refode[testing]") \
        from None

import numpy as np

from .. import io as _io
from ..bases import basis as make_basis, families
from ..errors import BasisError
from ..integrate.tableau import Tableau, tableau, tableaus
from ..models import ContinuousNet, ContinuousTagger
from ..constants import IGNORE_INDEX
from .cases import build_model

#: largest basis size drawn by default (small examples run fast).
MAX_N_BASIS = 8
#: largest step count drawn by default.
MAX_N_STEPS = 8
#: largest number of stages of a random tableau by default.
MAX_STAGES = 4
#: denominators of the random tableau coefficients (exact fractions).
DENOMINATORS = (1, 2, 3, 4, 6)
#: the model dtypes.
DTYPES = ("float64", "float32")
_counter = itertools.count()


def valid_sizes(family, max_n=MAX_N_BASIS):
    """The sizes ``1 <= n <= max_n`` that the basis family accepts (by construction).

    Parameters
    ----------
    family : str
        A registered family (``refode.families()``).
    max_n : int

    Returns
    -------
    tuple of int
    """
    out = []
    for n in range(1, max_n + 1):
        try:
            make_basis(family, n)
        except BasisError:
            continue
        out.append(n)
    return tuple(out)


def basis_specs(family_names=None, max_n=MAX_N_BASIS):
    """``(family, n)`` pairs with ``n`` valid for the family.

    Parameters
    ----------
    family_names : sequence of str, optional
        Families to draw from (default: every registered family).
    max_n : int
        Largest size.

    Returns
    -------
    hypothesis strategy of (str, int)
    """
    names = tuple(families() if family_names is None else family_names)
    pairs = [(f, n) for f in names for n in valid_sizes(f, max_n)]
    if not pairs:
        raise ValueError(f"no valid basis size <= {max_n} for the families {names}")
    return st.sampled_from(pairs)


def bases(family_names=None, max_n=MAX_N_BASIS, interval=None):
    """:class:`refode.Basis` objects of every family and a valid size.

    Parameters
    ----------
    family_names : sequence of str, optional
        Families to draw from (default: all).
    max_n : int
        Largest size.
    interval : tuple of float, optional
        A fixed interval (default ``[0, 1]``); pass ``"random"`` for a random finite
        interval ``t0 < t1``.

    Returns
    -------
    hypothesis strategy of refode.Basis
    """
    specs = basis_specs(family_names, max_n)
    if interval == "random":
        ends = st.tuples(st.floats(-4, 4), st.floats(0.25, 4)).map(lambda p: (p[0], p[0] + p[1]))
        return st.tuples(specs, ends).map(lambda s: make_basis(s[0][0], s[0][1], s[1]))
    iv = (0.0, 1.0) if interval is None else tuple(interval)
    return specs.map(lambda s: make_basis(s[0], s[1], iv))


def coefficients(basis, shape=(), dtype="float64", bound=10.0):
    """Coefficient arrays ``(K, *shape)`` for a basis (finite values in ``[-bound, bound]``).

    Parameters
    ----------
    basis : refode.Basis or int
        The basis (or ``K`` itself).
    shape : tuple of int or hypothesis strategy of tuples
        Trailing shape ``S``.
    dtype : {"float64", "float32"}
    bound : float

    Returns
    -------
    hypothesis strategy of numpy.ndarray
    """
    n = basis if isinstance(basis, int) else basis.n
    dt = np.dtype(dtype)
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False,
                         width=32 if dt == np.float32 else 64)
    shapes = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
    return shapes.flatmap(lambda s: hnp.arrays(dt, (n, *s), elements=elements))


def registered_tableaus():
    """The registered tableaus (``refode.tableaus()``) as :class:`refode.Tableau` objects."""
    return st.sampled_from([tableau(name) for name in tableaus()])


def _fractions(low, high):
    """Fractions ``p / q`` in ``[low, high]`` (integers ``low``, ``high``; ``q`` of DENOMINATORS)."""
    return st.sampled_from(DENOMINATORS).flatmap(
        lambda q: st.integers(low * q, high * q).map(lambda p: Fraction(p, q)))


@st.composite
def random_tableaus(draw, max_stages=MAX_STAGES):
    """Random valid explicit tableaus (exact fractions).

    ``a`` strictly lower triangular, each row of ``a`` summing to its ``c``, ``c`` in
    ``[0, 1]`` (``c_0 = 0``), ``b`` summing to 1; declared order 1 (consistency is all
    these guarantee).

    Parameters
    ----------
    max_stages : int

    Returns
    -------
    hypothesis strategy of refode.Tableau
    """
    s = draw(st.integers(1, max_stages))
    c = [Fraction(0)] + [draw(_fractions(0, 1)) for _ in range(s - 1)]
    a = [[Fraction(0)] * s for _ in range(s)]
    for i in range(1, s):
        for j in range(i - 1):
            a[i][j] = draw(_fractions(-2, 2))
        a[i][i - 1] = c[i] - sum(a[i][:i - 1], Fraction(0))
    b = [draw(_fractions(-1, 2)) for _ in range(s - 1)]
    b.append(1 - sum(b, Fraction(0)))
    return Tableau(f"random{next(_counter)}", a=a, b=b, c=c, order=1)


def any_tableaus(random=True, max_stages=MAX_STAGES):
    """Registered tableaus and (``random=True``) random valid explicit ones.

    Returns
    -------
    hypothesis strategy of refode.Tableau
    """
    out = registered_tableaus()
    return st.one_of(out, random_tableaus(max_stages)) if random else out


def step_counts(max_n=MAX_N_STEPS):
    """Step counts ``1 <= N <= max_n``."""
    return st.integers(1, max_n)


def schemes():
    """Names of the registered tableaus (what a model's ``scheme`` accepts)."""
    return st.sampled_from(tableaus())


@st.composite
def continuous_net_configs(draw, max_width=3, max_stages=2, max_n_basis=4, max_n_steps=3,
                           family_names=None):
    """Small :class:`~refode.models.ContinuousNet` keyword arguments, options included.

    Keys: ``in_channels, n_classes, widths, basis, n_basis, scheme, n_steps, seed,
    head_activation, padding, rate_scale, stitch_scale`` (pass to ``ContinuousNet(**cfg)``
    or :func:`refode.testing.build_model`).

    Returns
    -------
    hypothesis strategy of dict
    """
    family, n = draw(basis_specs(family_names, max_n_basis))
    stages = draw(st.integers(1, max_stages))
    return {
        "in_channels": draw(st.integers(1, 3)),
        "n_classes": draw(st.integers(2, 4)),
        "widths": tuple(draw(st.integers(1, max_width)) for _ in range(stages)),
        "basis": family, "n_basis": n,
        "scheme": draw(schemes()), "n_steps": draw(step_counts(max_n_steps)),
        "seed": draw(st.integers(0, 2 ** 16)),
        "head_activation": draw(st.sampled_from(("none", "relu"))),
        "padding": draw(st.sampled_from(("symmetric", "same"))),
        "rate_scale": draw(st.sampled_from((1.0, 0.5, -0.75, 1.25))),
        "stitch_scale": draw(st.sampled_from((1.0, 0.25, 0.5, 2.0))),
    }


@st.composite
def tagger_configs(draw, max_vocab=9, max_head_width=3, max_heads=2, max_ffn=5,
                   max_n_basis=4, max_n_steps=3, family_names=None):
    """Small :class:`~refode.models.ContinuousTagger` keyword arguments.

    Keys: ``vocab_size, n_tags, width, heads, ffn, basis, n_basis, scheme, n_steps, seed,
    padding_id, rate, attention_bias, ln_eps`` (``width`` is a multiple of ``heads``).

    Returns
    -------
    hypothesis strategy of dict
    """
    family, n = draw(basis_specs(family_names, max_n_basis))
    heads = draw(st.integers(1, max_heads))
    vocab = draw(st.integers(2, max_vocab))
    return {
        "vocab_size": vocab, "n_tags": draw(st.integers(1, 4)),
        "width": heads * draw(st.integers(1, max_head_width)), "heads": heads,
        "ffn": draw(st.integers(1, max_ffn)),
        "basis": family, "n_basis": n,
        "scheme": draw(schemes()), "n_steps": draw(step_counts(max_n_steps)),
        "seed": draw(st.integers(0, 2 ** 16)),
        "padding_id": draw(st.integers(-1, vocab)),
        "rate": draw(st.sampled_from(("paper", "pre_ln"))),
        "attention_bias": draw(st.booleans()),
        "ln_eps": draw(st.sampled_from((1e-5, 1e-6))),
    }


def model_configs():
    """Small configurations of either family; a ``"model"`` key names it.

    (Use :func:`continuous_net_configs` and :func:`tagger_configs` to bound the sizes.)

    Returns
    -------
    hypothesis strategy of dict
    """
    return st.one_of(
        continuous_net_configs().map(lambda c: {"model": "ContinuousNet", **c}),
        tagger_configs().map(lambda c: {"model": "ContinuousTagger", **c}))


def image_inputs(in_channels, n_classes, max_batch=3, min_side=1, max_side=6, dtype="float64"):
    """``(x, y)`` for a ContinuousNet: images ``(B, C0, H, W)`` and int64 classes ``(B,)``.

    ``B >= 2`` so that training-mode batch norm has an unbiased variance.

    Returns
    -------
    hypothesis strategy of (numpy.ndarray, numpy.ndarray)
    """
    dt = np.dtype(dtype)
    elements = st.floats(-3, 3, width=32 if dt == np.float32 else 64)

    @st.composite
    def draw_inputs(draw):
        b = draw(st.integers(2, max_batch))
        h, w = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
        if h * w * b < 2:
            h = 2
        x = draw(hnp.arrays(dt, (b, in_channels, h, w), elements=elements))
        y = np.array([draw(st.integers(0, n_classes - 1)) for _ in range(b)], np.int64)
        return x, y
    return draw_inputs()


def token_inputs(vocab_size, n_tags, padding_id=0, max_batch=3, max_length=6):
    """``(ids, tags)`` for a ContinuousTagger: int64 ``(B, L)`` each, ``-100`` at padding.

    Ids are in ``[0, vocab_size)``; positions holding ``padding_id`` get the tag ``-100``,
    and other tags may be ``-100`` too.

    Returns
    -------
    hypothesis strategy of (numpy.ndarray, numpy.ndarray)
    """
    @st.composite
    def draw_inputs(draw):
        b, length = draw(st.integers(1, max_batch)), draw(st.integers(1, max_length))
        ids = draw(hnp.arrays(np.int64, (b, length), elements=st.integers(0, vocab_size - 1)))
        tags = draw(hnp.arrays(np.int64, (b, length),
                               elements=st.one_of(st.integers(0, n_tags - 1),
                                                  st.just(IGNORE_INDEX))))
        tags[ids == padding_id] = IGNORE_INDEX
        return ids, tags
    return draw_inputs()


def inputs_for(model, **kwargs):
    """Inputs ``(x, y)`` fitting a model (images or ids+tags; keywords bound the sizes).

    Returns
    -------
    hypothesis strategy of (numpy.ndarray, numpy.ndarray)
    """
    if isinstance(model, ContinuousNet):
        in_channels = model.params["stem_conv.weight"].shape[1]
        n_classes = model.params["dense.bias"].shape[0]
        return image_inputs(in_channels, n_classes, dtype=model.dtype.name, **kwargs)
    if isinstance(model, ContinuousTagger):
        return token_inputs(model.vocab_size, model.n_tags, model.padding_id, **kwargs)
    raise TypeError(f"inputs_for needs a ContinuousNet or ContinuousTagger, got {type(model)}")


@st.composite
def models(draw, configs=None, dtypes=DTYPES):
    """Freshly initialised models (both families unless ``configs`` is given).

    Parameters
    ----------
    configs : hypothesis strategy of dict, optional
        E.g. :func:`continuous_net_configs` (default :func:`model_configs`).
    dtypes : sequence of str

    Returns
    -------
    hypothesis strategy of ContinuousNet or ContinuousTagger
    """
    cfg = draw(model_configs() if configs is None else configs)
    return build_model(cfg, draw(st.sampled_from(tuple(dtypes))))


class SavedModel:
    """A model and the weight file it was saved to (:func:`saved_models`).

    Attributes
    ----------
    path : str
        The weight file (``refode.save``).
    model : ContinuousNet or ContinuousTagger
        The in-memory model (``refode.load(path)`` gives a bitwise-equal one).
    """

    def __init__(self, path, model):
        self.path, self.model = path, model

    def __repr__(self):
        return f"SavedModel({self.path!r}, {type(self.model).__name__})"


@st.composite
def saved_models(draw, directory=None, configs=None, dtypes=DTYPES):
    """Models saved to weight files: :class:`SavedModel` ``(path, model)``.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        Where to write the files (default: a per-process folder under the system
        temporary directory, ``refode-testing-<pid>``); each example gets a new name.
    configs : hypothesis strategy of dict, optional
    dtypes : sequence of str

    Returns
    -------
    hypothesis strategy of SavedModel
    """
    model = draw(models(configs, dtypes))
    folder = os.fspath(directory) if directory is not None else os.path.join(
        tempfile.gettempdir(), f"refode-testing-{os.getpid()}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"model{next(_counter)}.h5")
    _io.save(model, path)
    return SavedModel(path, model)


#: public names.
__all__ = ["valid_sizes", "basis_specs", "bases", "coefficients", "registered_tableaus",
           "random_tableaus", "any_tableaus", "step_counts", "schemes", "continuous_net_configs",
           "tagger_configs", "model_configs", "image_inputs", "token_inputs", "inputs_for",
           "models", "SavedModel", "saved_models"]
