"""PyTorch state dicts of ``validation/torch_impl``'s modules <-> refode files and models.

torch is imported inside the functions only: ``import refode.interop.torch`` works
without torch installed, the conversions need it.

Name mapping (the only one): a refode array name ``"<layer>.<array>"`` of a
normalisation layer (``stem_bn``, ``head_bn``, ``*.bn``, ``*.bn1``, ``*.bn2``, the
tagger's ``norm``) becomes a state-dict key by renaming ``<array>`` by
:data:`NAME_TABLE`; every other name is kept as is. Layouts are refode's (and PyTorch's): convolution
weights OIHW, dense ``(out, in)``, depth-dependent arrays with their leading basis
axis ``K``.

===============================  ===========================================
refode name                      state-dict key
===============================  ===========================================
``stem_bn.gamma`` (any ``.gamma``)  ``stem_bn.weight``
``stem_bn.beta``  (any ``.beta``)   ``stem_bn.bias``
``stem_bn.mean``  (any ``.mean``)   ``stem_bn.running_mean``
``stem_bn.var``   (any ``.var``)    ``stem_bn.running_var``
``block1.bn1.gamma`` ``(K, C)``   ``block1.bn1.weight`` ``(K, C)`` (same rule)
``norm.gamma``, ``norm.beta``     ``norm.weight``, ``norm.bias`` (tagger)
``ode.ln1_gamma``, ``stem_conv.weight``, ...  unchanged
(none)                           ``<bn>.num_batches_tracked`` (0) for every
                                 ``nn.BatchNorm2d``: ``stem_bn``, ``head_bn``,
                                 ``stitch*.*.bn*`` (not the ODE-blocks')
===============================  ===========================================

Examples
--------
>>> from refode.interop import torch as rt                     # doctest: +SKIP
>>> from validation.torch_impl.continuousnet import TorchContinuousNet
>>> family, cfg, dtype = rt.config("net.h5")
>>> net = TorchContinuousNet(**cfg, dtype=dtype)
>>> net.load_state_dict(rt.state_dict("net.h5"))
>>> rt.save(net.state_dict(), family, cfg, "trained.h5")       # and back to refode
"""
import re
from collections import OrderedDict

import numpy as np

from ..errors import RefodeError
from ._common import build, describe, model_of, require

#: refode's last name component -> PyTorch's.
NAME_TABLE = (("gamma", "weight"), ("beta", "bias"), ("mean", "running_mean"),
              ("var", "running_var"))
#: the counter of ``nn.BatchNorm2d`` (not in refode files; dropped when reading).
BATCHES_TRACKED = "num_batches_tracked"
_TO_TORCH = dict(NAME_TABLE)
_TO_REFODE = {v: k for k, v in NAME_TABLE}


def _require_torch():
    return require("torch", "PyTorch", "torch")


#: normalisation layers (the only ones renamed): ``stem_bn``, ``head_bn``, ``*.bn``,
#: ``*.bn1``, ``*.bn2``, ``norm``.
_NORM_LAYER = re.compile(r"(?:^|[._])bn\d*$|^norm$")


def _is_norm(layer):
    return bool(_NORM_LAYER.search(layer))


def torch_key(name):
    """State-dict key of a refode array name (:data:`NAME_TABLE`)."""
    head, _, last = name.rpartition(".")
    if head and _is_norm(head):
        last = _TO_TORCH.get(last, last)
    return f"{head}.{last}" if head else last


def refode_name(key):
    """refode array name of a state-dict key (inverse of :func:`torch_key`)."""
    head, _, last = key.rpartition(".")
    if head and _is_norm(head):
        last = _TO_REFODE.get(last, last)
    return f"{head}.{last}" if head else last


def config(source):
    """``(family, config, dtype)`` of a refode model, weight file or golden file.

    ``config`` holds exactly the keyword arguments of ``TorchContinuousNet`` /
    ``TorchTagger`` (the file's JSON ``config``); ``dtype`` is ``"float64"`` or
    ``"float32"``.
    """
    return describe(source)


def state_dict(source, dtype=None):
    """The state dict of ``validation/torch_impl``'s module for a refode model or file.

    Parameters
    ----------
    source : ContinuousNet, ContinuousTagger, or path of a weight or golden file
    dtype : {"float64", "float32"}, optional
        Tensor dtype (default: the model's).

    Returns
    -------
    OrderedDict ``{key: torch.Tensor}``, loadable with ``load_state_dict(strict=True)``
    """
    torch = _require_torch()
    model = model_of(source)
    dt = np.dtype(model.dtype if dtype is None else dtype)
    if dt not in (np.float64, np.float32):
        raise RefodeError(f"`dtype` must be float64 or float32, got {dt}")
    out = OrderedDict()
    arrays = {**model.params, **model.state}
    for name in sorted(arrays):
        out[torch_key(name)] = torch.from_numpy(np.array(arrays[name], dtype=dt))
        if name.endswith(".mean") and not name.startswith("block"):
            out[f"{name.rpartition('.')[0]}.{BATCHES_TRACKED}"] = torch.tensor(0)
    return out


def arrays(state_dict):
    """``{refode name: ndarray}`` of a state dict (``num_batches_tracked`` dropped)."""
    _require_torch()
    return {refode_name(k): v.detach().cpu().numpy() for k, v in state_dict.items()
            if not k.endswith(BATCHES_TRACKED)}


def to_refode(state_dict, family, cfg, dtype=None):
    """A refode model holding the tensors of ``state_dict``.

    Parameters
    ----------
    state_dict : mapping of key -> torch.Tensor (e.g. ``module.state_dict()``)
    family : {"ContinuousNet", "ContinuousTagger"}
    cfg : dict, the module's configuration (:func:`config`)
    dtype : optional, default the tensors' dtype

    Returns
    -------
    ContinuousNet or ContinuousTagger
    """
    values = arrays(state_dict)
    if dtype is None:
        kinds = {v.dtype for v in values.values() if v.dtype.kind == "f"}
        dtype = np.float32 if kinds == {np.dtype(np.float32)} else np.float64
    return build(family, cfg, dtype, values)


def save(state_dict, family, cfg, path, dtype=None):
    """Write ``state_dict`` as a refode weight file (``refode.save``); returns the model."""
    from ..io import save as save_model

    model = to_refode(state_dict, family, cfg, dtype)
    save_model(model, path)
    return model
