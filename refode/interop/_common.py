"""Framework-free helpers of the converters: sources, configurations, name checks."""
import os

import numpy as np

from ..errors import RefodeError, ShapeError
from ..io import layout


def require(module, package, interop):
    """Import ``module`` (a framework), or a RefodeError saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - exercised only without the framework
        raise RefodeError(f"refode.interop.{interop} needs {package}; install it with "
                          f"`python -m pip install {module}`") from err


def model_of(source):
    """A refode model from a model, a weight file or a golden file (its ``/model``)."""
    from ..models import ContinuousNet, ContinuousTagger

    if isinstance(source, (ContinuousNet, ContinuousTagger)):
        return source
    if isinstance(source, (str, os.PathLike)):
        from ..io import load

        return load(source)
    raise RefodeError(f"`source` must be a ContinuousNet, a ContinuousTagger or the path of a "
                      f"refode HDF5 file, got {type(source).__name__}")


def describe(source):
    """``(family, config, dtype name)`` of a model or file (``config`` as in the file)."""
    model = model_of(source)
    family, cfg = layout.config_of(model)
    return family, cfg, np.dtype(model.dtype).name


def build(family, cfg, dtype, arrays):
    """A refode model of ``family``/``cfg`` holding ``arrays`` (``{refode name: ndarray}``).

    Raises :class:`~refode.errors.RefodeError` naming missing or unexpected arrays and
    :class:`~refode.errors.ShapeError` naming a wrong shape.
    """
    from ..io.read import build as build_model

    if family not in (layout.CONTINUOUS_NET, layout.TAGGER):
        raise RefodeError(f"unknown `family` {family!r:.40}; choose "
                          f"{layout.CONTINUOUS_NET!r} or {layout.TAGGER!r}")
    dtype = np.dtype(dtype)
    template = build_model(family, dict(cfg), dtype, {}, {})
    want = {**template.params, **template.state}
    missing = sorted(set(want) - set(arrays))
    extra = sorted(set(arrays) - set(want))
    if missing or extra:
        raise RefodeError(f"the arrays do not match the configuration: missing {missing[:5]}, "
                          f"unexpected {extra[:5]}; convert the state dict of a module built "
                          "with the same configuration")
    for name, value in arrays.items():
        if tuple(np.shape(value)) != want[name].shape:
            raise ShapeError(f"array {name!r} has shape {tuple(np.shape(value))}, the "
                             f"configuration needs {want[name].shape}")
    params = {k: np.asarray(arrays[k], dtype) for k in template.params}
    state = {k: np.asarray(arrays[k], dtype) for k in template.state}
    return build_model(family, dict(cfg), dtype, params, state)
