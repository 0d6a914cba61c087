"""Names, shapes and layouts of the original Stateful ODE-Nets code's run directories.

The tables behind :mod:`refode.io.statefulodenets`: the original's model classes and
their ``model.json`` attributes, the checkpoint paths of every array with the refode
name it maps to (:func:`classifier_entries`, :func:`tagger_entries`), the array
layout transforms, and the original's float stage grid (:func:`grid_mismatch`).
"""
import math
import re
from fractions import Fraction
from typing import NamedTuple, Optional

import numpy as np

from ..constants import FLAX_LN_EPS, FLAX_PADDING_ID as PADDING_ID  # noqa: F401

#: files of a run directory.
MODEL_JSON, HYPER_JSON = "model.json", "optimizer_hyper_params.json"
CHECKPOINT = re.compile(r"checkpoint_(\d+)")
#: the original's model classes.
CLASSIFIER, TRANSFORMER = "ContinuousImageClassifier", "ContinuousTransformer"
#: the original's scheme names -> refode tableaus, and their stage fractions c.
SCHEMES = {"Euler": "euler", "Midpoint": "midpoint", "RK4": "rk4", "RK4_38": "rk4_38"}
STAGES = {"Euler": (0,), "Midpoint": (0, Fraction(1, 2)),
          "RK4": (0, Fraction(1, 2), Fraction(1, 2), 1),
          "RK4_38": (0, Fraction(1, 3), Fraction(2, 3), 1)}
#: the original shifts a stage at the end of its step back by this much (RK4, RK4_38).
DT_OPEN_SET_EPS = 1.0e-5
#: the original's bases (refode has the same names).
BASES = ("piecewise_constant", "fem_linear", "piecewise_linear", "poly_linear")
#: ``norm`` values of the classifier that are batch norm with eps 1e-5 in evaluation.
NORMS = ("BatchNorm", "BatchNorm-opt-flax", "BatchNorm-freeze")
#: stage widths of the classifier as multiples of ``hidden * alpha``.
WIDTH_FACTORS = (1, 2, 4)
#: attributes of the original's classes and their defaults (used for absent keys).
CLASSIFIER_FIELDS = {"alpha": 1, "hidden": 16, "n_classes": 10, "n_step": 2, "scheme": "Euler",
                     "n_basis": 2, "basis": "piecewise_constant", "norm": "BatchNorm",
                     "kernel_init": "kaiming_out", "training": True, "epsilon": 1.0,
                     "stitch_epsilon": 1.0}
TRANSFORMER_FIELDS = {"config": None, "scheme": "Euler", "n_step": 1,
                      "basis": "piecewise_constant", "n_basis": 1, "training": True}
CONFIG_FIELDS = {"vocab_size": None, "output_vocab_size": None, "dtype": "float32",
                 "emb_dim": 128, "num_heads": 1, "num_layers": 1, "qkv_dim": 128,
                 "mlp_dim": 128, "max_len": 2048, "dropout_rate": 0.1,
                 "attention_dropout_rate": 0.3, "kernel_init": "xavier_uniform",
                 "bias_init": "normal", "posemb_init": "None"}
#: the extra key listing the refinements of each class.
REFINE_KEY = {CLASSIFIER: "refine_epochs", TRANSFORMER: "refine_steps"}
#: top-level trees of a checkpoint holding the model.
TARGET, STATE = "optimizer/target", "state"
#: original array kind -> (to refode, from refode) transforms.
CONV, DENSE, COPY, QKV, OUT = "conv", "dense", "copy", "qkv", "out"


class Entry(NamedTuple):
    """One original array and where it goes in refode.

    ``tree`` is :data:`TARGET` or :data:`STATE`; ``path`` the path below it (``{k}``
    stands for the node index when ``per_node``: the refode array then has a leading
    K axis); ``kind`` the layout transform; ``slot`` the index in a stacked refode
    array (the four attention projections) or None.
    """

    tree: str
    path: str
    name: str
    kind: str
    slot: Optional[int]
    per_node: bool


def _bn(entries, param, stat, name, k=False):
    entries += [(TARGET, f"{param}/scale", f"{name}.gamma", COPY, None, k),
                (TARGET, f"{param}/bias", f"{name}.beta", COPY, None, k),
                (STATE, f"{stat}/mean", f"{name}.mean", COPY, None, k),
                (STATE, f"{stat}/var", f"{name}.var", COPY, None, k)]


def classifier_entries():
    """The :class:`Entry` of every array of the classifier."""
    e = [(TARGET, "Conv_0/kernel", "stem_conv.weight", CONV, None, False)]
    _bn(e, "BatchNorm_0", "batch_stats/BatchNorm_0", "stem_bn")
    for j in range(len(WIDTH_FACTORS)):
        s, r = f"ResidualStitch_{j}", f"stitch{j + 1}"
        _bn(e, f"{s}/BatchNorm_0", f"batch_stats/{s}/BatchNorm_0", f"{r}.branch.bn1")
        convs = ["branch.conv1", "branch.conv2"]
        if j:   # stride 2: Conv_0 / BatchNorm_1 are the 1x1 shortcut on x
            convs.insert(0, "shortcut.conv")
            _bn(e, f"{s}/BatchNorm_1", f"batch_stats/{s}/BatchNorm_1", f"{r}.shortcut.bn")
        _bn(e, f"{s}/BatchNorm_{len(convs) - 1}",
            f"batch_stats/{s}/BatchNorm_{len(convs) - 1}", f"{r}.branch.bn2")
        e += [(TARGET, f"{s}/Conv_{i}/kernel", f"{r}.{c}.weight", CONV, None, False)
              for i, c in enumerate(convs)]
        b, node = f"StatefulContinuousBlock_{j}", f"block{j + 1}"
        p, st = f"{b}/ode_params/{{k}}/params", f"ode_state/{b}/state/{{k}}/batch_stats"
        for i in range(2):
            _bn(e, f"{p}/BatchNorm_{i}", f"{st}/BatchNorm_{i}", f"{node}.bn{i + 1}", True)
            e.append((TARGET, f"{p}/Conv_{i}/kernel", f"{node}.conv{i + 1}.weight", CONV,
                      None, True))
    _bn(e, "BatchNorm_1", "batch_stats/BatchNorm_1", "head_bn")
    e += [(TARGET, "Dense_0/kernel", "dense.weight", DENSE, None, False),
          (TARGET, "Dense_0/bias", "dense.bias", COPY, None, False)]
    return [Entry(*row) for row in e]


def tagger_entries():
    """The :class:`Entry` of every array of the tagger."""
    p = "ContinuousBlock_0/ode_params/{k}/params"
    e = [(TARGET, "embed/embedding", "embed.weight", COPY, None, False)]
    for i, ln in enumerate(("ln1", "ln2")):
        e += [(TARGET, f"{p}/LayerNorm_{i}/scale", f"ode.{ln}_gamma", COPY, None, True),
              (TARGET, f"{p}/LayerNorm_{i}/bias", f"ode.{ln}_beta", COPY, None, True)]
    for slot, proj in enumerate(("query", "key", "value", "out")):
        e.append((TARGET, f"{p}/SelfAttention_0/{proj}/kernel", "ode.attn_weights",
                  OUT if proj == "out" else QKV, slot, True))
    for i in range(2):
        e += [(TARGET, f"{p}/MlpBlock_0/Dense_{i}/kernel", f"ode.mlp_w{i + 1}", DENSE, None,
               True),
              (TARGET, f"{p}/MlpBlock_0/Dense_{i}/bias", f"ode.mlp_b{i + 1}", COPY, None, True)]
    e += [(TARGET, "LayerNorm_0/scale", "norm.gamma", COPY, None, False),
          (TARGET, "LayerNorm_0/bias", "norm.beta", COPY, None, False),
          (TARGET, "Dense_0/kernel", "head.weight", DENSE, None, False),
          (TARGET, "Dense_0/bias", "head.bias", COPY, None, False)]
    return [Entry(*row) for row in e]


def original_shape(kind, shape, heads):
    """Shape in the original of an array whose refode shape (one node, one slot) is ``shape``."""
    if kind == CONV:
        o, i, kh, kw = shape
        return (kh, kw, i, o)
    if kind == DENSE:
        return tuple(reversed(shape))
    if kind == QKV:
        return (shape[1], heads, shape[0] // heads)
    if kind == OUT:
        return (heads, shape[1] // heads, shape[0])
    return tuple(shape)


def to_refode(kind, a):
    """An original array in refode's layout (see :func:`original_shape`)."""
    if kind == CONV:
        return a.transpose(3, 2, 0, 1)
    if kind == DENSE:
        return a.T
    if kind == QKV:
        return a.reshape(a.shape[0], -1).T
    if kind == OUT:
        return a.reshape(-1, a.shape[-1]).T
    return a


def to_original(kind, a, heads):
    """A refode array in the original's layout (inverse of :func:`to_refode`)."""
    if kind == CONV:
        return a.transpose(2, 3, 1, 0)
    if kind == DENSE:
        return a.T
    if kind in (QKV, OUT):
        return a.T.reshape(original_shape(kind, a.shape, heads))
    return a


def grid_mismatch(name, k, scheme, n_steps):
    """How the original's float stage grid differs from refode's exact one, or None.

    The original steps from ``t0 in numpy.arange(0, 1, 1/N)``, places stage ``c`` at
    ``t0 + c dt`` (``t0 + dt - 1e-5`` for ``c = 1``) and picks element
    ``min(int(E t), E - 1)`` of its ``E`` equal elements; refode uses the exact position
    ``(n + c) / N`` and the element inside the step (:mod:`refode.integrate.grid`).

    Parameters
    ----------
    name : str
        The original's basis name.
    k : int
        Number of nodes.
    scheme : str
        The original's scheme name (a key of :data:`STAGES`).
    n_steps : int

    Returns
    -------
    str or None
        The first difference in words (a different step count or element).
    """
    steps = np.arange(0, 1, 1.0 / n_steps)
    if len(steps) != n_steps:
        return f"numpy.arange(0, 1, 1/{n_steps}) gives the original {len(steps)} steps"
    elements = {"piecewise_constant": k, "fem_linear": max(k - 1, 1),
                "piecewise_linear": k // 2}.get(name)
    if elements is None:
        return None   # poly_linear: one global piece
    dt = 1.0 / n_steps
    shift = {0: 0.0, Fraction(1, 2): 0.5 * dt, Fraction(1, 3): 1.0 / 3.0 * dt,
             Fraction(2, 3): 2.0 / 3.0 * dt, 1: dt - DT_OPEN_SET_EPS}
    for n, t0 in enumerate(steps):
        for c in STAGES[scheme]:
            t = t0 + shift[c]
            theirs = min(int(elements * t), elements - 1)
            position = (n + c) / Fraction(n_steps)
            exact = position * elements
            ours = min(max(math.ceil(exact) - 1 if c == 1 else math.floor(exact), 0),
                       elements - 1)
            if theirs != ours:
                return (f"at step {n} the original evaluates t = {float(t)!r} in piece "
                        f"{theirs}, refode the exact position {position} in piece {ours}")
    return None

