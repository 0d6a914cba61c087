"""Golden cases for other implementations: read a golden file, write one for a configuration.

A :class:`GoldenCase` is what an implementation under test receives (from the pytest
plugin's ``refode_golden_case`` fixture, or built by hand from a path): the model's family,
configuration, dtype and arrays, the inputs, the mode and the tolerances, all as plain
NumPy data read from the file (the layout of ``docs/format.md``).
"""
import copy
import json
import os

import numpy as np

from ..errors import RefodeError
from ..io import golden as _golden
from ..io import layout, load
from ..io.read import open_h5
from ..io.reference import seeded_inputs
from ..models import FAMILIES
from .assertions import assert_arrays_close, assert_close_to_golden, flatten

#: group of the running statistics after a training step (``outputs/state/<name>``).
STATE = "outputs/state"
#: default batch of the seeded inputs of :func:`write_golden`.
DEFAULT_BATCH = 4


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def family_of(config):
    """``"ContinuousNet"`` or ``"ContinuousTagger"`` from a configuration dict.

    Parameters
    ----------
    config : dict
        Keyword arguments of a model (a ``"model"`` key, if present, decides; otherwise a
        ``"vocab_size"`` key means the tagger).

    Returns
    -------
    str
    """
    if "model" in config:
        if config["model"] not in layout.MODELS:
            raise RefodeError(f"unknown `model` {config['model']!r:.40} in the configuration; "
                              f"use one of {', '.join(layout.MODELS)}")
        return config["model"]
    return layout.TAGGER if "vocab_size" in config else layout.CONTINUOUS_NET


def build_model(config, dtype="float64", seed=0):
    """A freshly initialised model from a configuration dict.

    Parameters
    ----------
    config : dict
        Keyword arguments of :class:`~refode.models.ContinuousNet` or
        :class:`~refode.models.ContinuousTagger` (the ``config`` of a weight file works
        too: a tagger's ``interval`` is honoured); an optional ``"model"`` key names the
        family, and ``seed``/``dtype`` keys, when present, override the arguments.
    dtype : {"float64", "float32"}
    seed : int
        Seed of the initialisation.

    Returns
    -------
    ContinuousNet or ContinuousTagger
    """
    if not isinstance(config, dict):
        raise RefodeError(f"`config` must be a dict of model arguments, got {type(config).__name__}")
    kw = {k: v for k, v in config.items() if k != "model"}
    cls = FAMILIES[family_of(config)]
    fields = {k: kw.pop(k) for k in list(kw) if k in cls.FIELDS}
    options = {"seed": kw.pop("seed", seed), "dtype": np.dtype(kw.pop("dtype", dtype))}
    return cls.from_config(fields, **options, **kw)


def write_golden(path, model, mode="train", seed=0, batch=DEFAULT_BATCH, dtype="float64",
                 model_seed=0, x=None, y=None, rtol=None, atol=None):
    """Write the golden file of a model (or of a configuration) on seeded inputs.

    Parameters
    ----------
    path : str or os.PathLike
        Written atomically.
    model : ContinuousNet, ContinuousTagger or dict
        A model, or a configuration for :func:`build_model`.
    mode : {"train", "eval"}
        Batch statistics or running statistics (docs/format.md section 3.3).
    seed : int
        Seed of the inputs (as ``refode golden --seed``).
    batch : int
        Batch size of the seeded inputs.
    dtype : {"float64", "float32"}
        Dtype of a model built from a configuration.
    model_seed : int
        Seed of the initialisation of a model built from a configuration.
    x, y : array, optional
        Inputs instead of the seeded ones.
    rtol, atol : float, optional
        Tolerances stored in the file (default per dtype, ``refode.io.golden.TOLERANCES``).

    Returns
    -------
    str
        ``path``.
    """
    if isinstance(model, dict):
        model = build_model(model, dtype, model_seed)
    if x is None or y is None:
        x, y = seeded_inputs(model, seed, batch)
    _golden.write(path, model, x, y, mode, rtol, atol)
    return os.fspath(path)


def expected_state(model, x, mode):
    """refode's running statistics after one forward step of ``model`` on ``x``.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
        Not changed (a copy is stepped).
    x : array
        The inputs.
    mode : {"train", "eval"}
        ``"train"``: the statistics after a training-mode forward pass (docs/format.md 6.4);
        ``"eval"``: the stored statistics, unchanged.

    Returns
    -------
    dict
        ``{"outputs/state/<name>": array}`` (empty for the tagger, which has no state).
    """
    if mode == "train" and model.STATEFUL:
        model = copy.deepcopy(model)
        model.forward(x, train=True, update_state=True)
    state = {name: np.array(value) for name, value in model.state.items()}
    return {f"{STATE}/{name}": value for name, value in state.items()}


class GoldenCase:
    """One golden file, as plain data for an implementation under test.

    Parameters
    ----------
    path : str or os.PathLike
        A golden file (validated on construction).

    Attributes
    ----------
    path : str
    name : str
        The file name without ``.h5``.
    family : str
        ``"ContinuousNet"`` or ``"ContinuousTagger"``.
    config : dict
        The model's configuration with every format-version-2 key (docs/format.md 2.2;
        a version-1 file's implied values filled in).
    dtype : numpy.dtype
        float64 or float32: that of every array.
    mode : str
        ``"train"`` or ``"eval"`` (docs/format.md 3.3).
    rtol, atol : float
        The file's tolerances.
    x : numpy.ndarray
        ContinuousNet: images ``(B, C0, H, W)``; tagger: token ids ``(B, L)`` int64.
    y : numpy.ndarray
        int64 classes ``(B,)`` or tags ``(B, L)`` (``-100``: not counted).
    params, state : dict of str to numpy.ndarray
        The arrays of ``/model/params`` and ``/model/state``, names and layouts of
        docs/format.md 2.4 (ODE-block arrays carry the leading basis axis ``K``).
    expected : dict of str to numpy.ndarray
        The golden arrays (``"outputs/logits"``, ``"outputs/loss"``,
        ``"gradients/params/<name>"``, ``"gradients/inputs/x"`` or ``"…/embedded"``, and in
        training-mode ContinuousNet files written by a current refode
        ``"outputs/state/<name>"``, the running statistics after the step).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.name = os.path.splitext(os.path.basename(self.path))[0]
        with open_h5(self.path) as fh:
            tol, model, self.expected = _golden.read_golden(fh)
            self.mode = _text(fh.attrs["mode"])
            self.x, self.y = fh["inputs/x"][()], fh["inputs/y"][()]
        self.rtol, self.atol = tol["rtol"], tol["atol"]
        self.family, self.config = layout.config_of(model)
        self.dtype = np.dtype(model.dtype)
        self.params = {k: np.array(v) for k, v in model.params.items()}
        self.state = {k: np.array(v) for k, v in model.state.items()}

    def __repr__(self):
        return (f"GoldenCase({self.name!r}, {self.family}, {self.dtype.name}, mode={self.mode}, "
                f"config={json.dumps(self.config, sort_keys=True)})")

    def model(self):
        """The refode model stored in the file (``refode.load``)."""
        return load(self.path)

    def expected_state(self):
        """refode's running statistics after this case's step (``outputs/state/<name>``).

        ``"train"`` mode: after one training-mode forward pass on :attr:`x`
        (docs/format.md 6.4); ``"eval"`` mode: :attr:`state` unchanged.
        """
        return expected_state(self.model(), self.x, self.mode)

    def check(self, result):
        """Assert that an implementation's result matches this golden file.

        Parameters
        ----------
        result : mapping or callable
            The arrays (``"outputs/logits"``, ``"outputs/loss"``, ``"gradients/params/<name>"``,
            ``"gradients/inputs/x"`` / ``"gradients/inputs/embedded"``, and
            ``"outputs/state/<name>"``: the running statistics after the step, compared
            with the file's when it stores them, else with :meth:`expected_state`), or a
            callable ``f(case) -> mapping``.

        Returns
        -------
        list of dict
            The rows of the comparison.

        Raises
        ------
        AssertionError
            With a per-array table of errors (see :func:`refode.testing.assert_close_to_golden`).
        """
        __tracebackhide__ = True
        if callable(result):
            result = result(self)
        arrays = flatten(result)
        prefix = STATE + "/"
        stored = any(name.startswith(prefix) for name in self.expected)
        state = {} if stored else {k: v for k, v in arrays.items() if k.startswith(prefix)}
        rows = assert_close_to_golden(
            self.path, {k: v for k, v in arrays.items() if k not in state})
        if state:  # the file stores none (eval mode, older files): refode recomputes them
            rows += assert_arrays_close(self.expected_state(), state, self.rtol, self.atol,
                                        title=f"{self.path}: running statistics after the step")
        return rows
