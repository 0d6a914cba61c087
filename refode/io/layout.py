"""The configuration of a model family and the array shapes it implies.

Everything here is pure Python on the configuration dictionary: shapes and parameter
counts are derived *before* any array is allocated, so that :func:`refode.load` can
refuse malformed or absurdly large files without building anything.
"""
import numpy as np

from ..errors import RefodeError

from ..models.conv import STATS, weight_shapes
from ..models.tagger import ODE

#: the two model families a file can hold (root attribute ``model``).
CONTINUOUS_NET, TAGGER = "ContinuousNet", "ContinuousTagger"
MODELS = (CONTINUOUS_NET, TAGGER)

#: configuration keys of each family (format version 2) and the Python type of each
#: value (``float`` also admits a JSON integer).
CONFIG_KEYS = {
    CONTINUOUS_NET: {"in_channels": int, "n_classes": int, "widths": list, "basis": str,
                     "n_basis": int, "scheme": str, "n_steps": int, "head_activation": str,
                     "padding": str, "rate_scale": float, "stitch_scale": float},
    TAGGER: {"vocab_size": int, "n_tags": int, "width": int, "heads": int, "ffn": int,
             "basis": str, "n_basis": int, "interval": list, "scheme": str, "n_steps": int,
             "padding_id": int, "rate": str, "attention_bias": bool, "ln_eps": float},
}
#: the architecture options added in format version 2, with the values that every
#: version-1 file means (its configuration lacks these keys).
VERSION_1_DEFAULTS = {
    CONTINUOUS_NET: {"head_activation": "relu", "padding": "symmetric", "rate_scale": 1.0,
                     "stitch_scale": 1.0},
    TAGGER: {"ln_eps": 1e-5},
}

#: the depth interval of every ContinuousNet ODE-block.
UNIT_INTERVAL = (0.0, 1.0)
#: kernel size of the stem and stitch convolutions; shortcut convolutions are 1x1.
STEM_KERNEL, SHORTCUT_KERNEL = 3, 1
#: stride of the first stitch (the others use 2).
FIRST_STRIDE = 1
#: attention projections Q, K, V, O stacked in ``attn_weights``.
N_PROJECTIONS = 4


def config_of(model):
    """The configuration dictionary (JSON-ready) of a model.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger

    Returns
    -------
    family : str
    config : dict
    """
    from ..models import ContinuousNet, ContinuousTagger

    known = isinstance(model, (ContinuousNet, ContinuousTagger))
    if known and not isinstance(model.scheme, str):
        raise RefodeError("`model.scheme` must be a registered tableau name to be saved, got "
                          f"{type(model.scheme).__name__}; rediscretize it with a named scheme")
    if isinstance(model, ContinuousNet):
        blocks = model.blocks()
        shapes = model.params
        return CONTINUOUS_NET, {
            "in_channels": int(shapes["stem_conv.weight"].shape[1]),
            "n_classes": int(shapes["dense.weight"].shape[0]),
            "widths": [int(b.params["conv1.weight"].shape[1]) for b in blocks],
            "basis": model.basis.family, "n_basis": int(model.basis.n),
            "scheme": str(model.scheme), "n_steps": int(model.n_steps),
            "head_activation": str(model.head_activation), "padding": str(model.padding),
            "rate_scale": float(model.rate_scale), "stitch_scale": float(model.stitch_scale)}
    if isinstance(model, ContinuousTagger):
        rate = model.rate
        return TAGGER, {
            "vocab_size": model.vocab_size, "n_tags": model.n_tags, "width": rate.width,
            "heads": rate.heads, "ffn": rate.ffn, "basis": model.basis.family,
            "n_basis": int(model.basis.n), "interval": [float(v) for v in model.basis.interval],
            "scheme": str(model.scheme), "n_steps": int(model.n_steps),
            "padding_id": int(model.padding_id), "rate": str(model.rate_kind),
            "attention_bias": bool(rate.attention_bias), "ln_eps": float(model.ln_eps)}
    raise RefodeError(
        f"`model` must be a ContinuousNet or ContinuousTagger, got {type(model).__name__}")


def _batchnorm(prefix, channels, params, state):
    params[f"{prefix}.gamma"] = (channels,)
    params[f"{prefix}.beta"] = (channels,)
    state[f"{prefix}.mean"] = (channels,)
    state[f"{prefix}.var"] = (channels,)


def _stitch(j, c_in, c_out, params, state):
    branch = f"stitch{j}.branch"
    _batchnorm(f"{branch}.bn1", c_in, params, state)
    params[f"{branch}.conv1.weight"] = (c_out, c_in, STEM_KERNEL, STEM_KERNEL)
    _batchnorm(f"{branch}.bn2", c_out, params, state)
    params[f"{branch}.conv2.weight"] = (c_out, c_out, STEM_KERNEL, STEM_KERNEL)
    stride = FIRST_STRIDE if j == 1 else FIRST_STRIDE + 1
    if stride != 1 or c_in != c_out:
        params[f"stitch{j}.shortcut.conv.weight"] = (c_out, c_in, SHORTCUT_KERNEL,
                                                     SHORTCUT_KERNEL)
        _batchnorm(f"stitch{j}.shortcut.bn", c_out, params, state)


def _continuous_net(cfg):
    params, state, blocks = {}, {}, {}
    k, widths = cfg["n_basis"], cfg["widths"]
    params["stem_conv.weight"] = (widths[0], cfg["in_channels"], STEM_KERNEL, STEM_KERNEL)
    _batchnorm("stem_bn", widths[0], params, state)
    c_in = widths[0]
    for j, width in enumerate(widths, start=1):
        _stitch(j, c_in, width, params, state)
        name = f"block{j}"
        blocks[name] = list(UNIT_INTERVAL)
        for arr, shape in weight_shapes(width).items():
            params[f"{name}.{arr}"] = (k, *shape)
        for arr in STATS:
            state[f"{name}.{arr}"] = (k, width)
        c_in = width
    _batchnorm("head_bn", c_in, params, state)
    params["dense.weight"] = (cfg["n_classes"], c_in)
    params["dense.bias"] = (cfg["n_classes"],)
    return params, state, blocks


def _tagger(cfg):
    d, f, k = cfg["width"], cfg["ffn"], cfg["n_basis"]
    params = {"embed.weight": (cfg["vocab_size"], d)}
    rate = {"ln1_gamma": (d,), "ln1_beta": (d,), "attn_weights": (N_PROJECTIONS, d, d)}
    if cfg["attention_bias"]:
        rate["attn_biases"] = (N_PROJECTIONS, d)
    rate.update({"ln2_gamma": (d,), "ln2_beta": (d,), "mlp_w1": (f, d), "mlp_b1": (f,),
                 "mlp_w2": (d, f), "mlp_b2": (d,)})
    params.update({f"{ODE}.{name}": (k, *shape) for name, shape in rate.items()})
    params.update({"norm.gamma": (d,), "norm.beta": (d,),
                   "head.weight": (cfg["n_tags"], d), "head.bias": (cfg["n_tags"],)})
    return params, {}, {ODE: list(cfg["interval"])}


def shapes(family, cfg):
    """Expected array shapes of a validated configuration.

    Returns
    -------
    params, state : dict name -> tuple of int
        Trainable arrays and running statistics (``"<layer>.<array>"`` names; arrays of
        an ODE-block carry the leading basis axis ``K``).
    blocks : dict block name -> [t0, t1]
        The ODE-blocks and their depth intervals.
    """
    return (_continuous_net if family == CONTINUOUS_NET else _tagger)(cfg)


def count(shape_dict):
    """Number of scalars in arrays of the given shapes (Python ints: never overflows)."""
    return sum(int(np.prod(s, dtype=object)) for s in shape_dict.values())


def block_of(name, blocks):
    """The ODE-block an array belongs to, or ``None`` for a depth-independent array."""
    layer = name.split(".", 1)[0]
    return layer if layer in blocks else None

