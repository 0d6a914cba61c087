"""refode files and models <-> the parameter and state trees of ``validation/jax_impl``.

jax is imported inside the functions only: ``import refode.interop.jax`` works without
jax installed. Trees are nested dicts keyed by the dot-separated parts of refode's array
names, arrays unchanged in layout (NCHW, OIHW, dense ``(out, in)``, leading basis axis
``K`` of the ODE-blocks):

==============================  =====================================
refode name                     tree path
==============================  =====================================
``block1.conv1.weight``         ``params["block1"]["conv1"]["weight"]``
``stitch2.shortcut.bn.gamma``   ``params["stitch2"]["shortcut"]["bn"]["gamma"]``
``block1.bn1.mean`` (state)     ``state["block1"]["bn1"]["mean"]``
``ode.attn_weights``            ``params["ode"]["attn_weights"]``
==============================  =====================================

float64 arrays need ``jax.config.update("jax_enable_x64", True)`` first (otherwise JAX
would silently round them to float32; :func:`trees` refuses instead).

Examples
--------
>>> import jax; jax.config.update("jax_enable_x64", True)      # doctest: +SKIP
>>> from refode.interop import jax as rj
>>> from validation.jax_impl import continuousnet as jnet
>>> family, cfg, dtype = rj.config("net.h5")
>>> params, state = rj.trees("net.h5")
>>> logits, state = jnet.forward(params, state, x, cfg, train=False)
"""
import numpy as np

from ..errors import RefodeError
from ._common import build, describe, model_of, require


def _require_jax():
    return require("jax", "JAX", "jax")


def config(source):
    """``(family, config, dtype)`` of a refode model, weight file or golden file."""
    return describe(source)


def nest(arrays):
    """``{"a.b.c": v}`` -> ``{"a": {"b": {"c": v}}}``."""
    tree = {}
    for name, value in arrays.items():
        node = tree
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def flatten(tree, prefix=""):
    """Inverse of :func:`nest`: ``{"a.b.c": ndarray}`` (``None`` subtrees skipped)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif value is not None:
            out[name] = np.asarray(value)
    return out


def trees(source, dtype=None):
    """``(params, state)`` trees of ``jax.Array`` for a refode model or file.

    Parameters
    ----------
    source : ContinuousNet, ContinuousTagger, or path of a weight or golden file
    dtype : {"float64", "float32"}, optional (default: the model's)
    """
    jax = _require_jax()
    import jax.numpy as jnp

    model = model_of(source)
    dt = np.dtype(model.dtype if dtype is None else dtype)
    if dt not in (np.float64, np.float32):
        raise RefodeError(f"`dtype` must be float64 or float32, got {dt}")
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise RefodeError("float64 trees need 64-bit JAX: call "
                          "jax.config.update('jax_enable_x64', True) first, or pass "
                          "dtype='float32'")
    conv = {k: jnp.asarray(np.asarray(v, dt)) for k, v in model.params.items()}
    stat = {k: jnp.asarray(np.asarray(v, dt)) for k, v in model.state.items()}
    return nest(conv), nest(stat)


def to_refode(params, state, family, cfg, dtype=None):
    """A refode model holding the arrays of the ``params`` and ``state`` trees."""
    _require_jax()
    arrays = {**flatten(params), **flatten(state or {})}
    if dtype is None:
        kinds = {v.dtype for v in arrays.values()}
        dtype = np.float32 if kinds == {np.dtype(np.float32)} else np.float64
    return build(family, cfg, dtype, arrays)


def save(params, state, family, cfg, path, dtype=None):
    """Write the trees as a refode weight file (``refode.save``); returns the model."""
    from ..io import save as save_model

    model = to_refode(params, state, family, cfg, dtype)
    save_model(model, path)
    return model
