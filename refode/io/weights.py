"""Writing a model into an HDF5 group and :func:`save` (atomic).

The layout is documented in ``docs/format.md``; :mod:`refode.io.read` is its reader.
"""
import hashlib
import json

import h5py
import numpy as np

from .. import __version__, limits
from .._io import atomic_path
from ..errors import RefodeError
from . import layout

#: value of the ``format`` attribute of a weight file (and of a golden file's ``/model``).
FORMAT_NAME = "refode-weights"
#: the version of the layout this refode writes.
FORMAT_VERSION = 2
#: every version this refode reads (version 1: before the architecture options; its
#: files mean :data:`refode.io.layout.VERSION_1_DEFAULTS`).
READ_VERSIONS = (1, 2)
#: dataset attribute holding :func:`digest` (optional for other writers).
CHECKSUM = "sha256"
#: group names of the layout.
PARAMS, STATE, BLOCKS = "params", "state", "blocks"
#: attribute naming the model's backend (optional: a file without it means
#: :data:`DEFAULT_BACKEND`; no format version changes with it).
BACKEND, DEFAULT_BACKEND = "backend", "cpu"
#: the size caps of refode (one set, :mod:`refode.limits`), checked on load and on save:
#: scalars (parameters + state), basis functions, integration steps, ContinuousNet stages.
MAX_SCALARS, MAX_N_BASIS, MAX_N_STEPS, MAX_STAGES = (
    limits.MAX_SCALARS, limits.MAX_N_BASIS, limits.MAX_N_STEPS, limits.MAX_STAGES)


def text(value):
    """A string attribute value stored inline as fixed-length UTF-8.

    Variable-length strings live on HDF5's global heap, where a damaged file can crash
    or hang the HDF5 library; fixed-length ones sit in the attribute itself. h5py reads
    them back as ``bytes`` (``.decode()`` them).
    """
    raw = value.encode("utf-8")
    return np.array(raw, dtype=h5py.string_dtype("utf-8", max(len(raw), 1)))


def check_writable(model):
    """Refuse (RefodeError) a model whose file :func:`refode.load` would refuse.

    Its configuration must pass the reader's checks (sizes against the caps of
    :mod:`refode.limits`, basis, scheme) and every array must be finite.

    Returns
    -------
    family, config : as :func:`refode.io.layout.config_of`
    """
    from .config import check_config   # the reader's checks (config imports this module)

    family, cfg = layout.config_of(model)
    try:
        check_config(family, json.dumps(cfg, sort_keys=True), "")
    except RefodeError as exc:
        raise RefodeError(f"`model` cannot be saved: refode.load would refuse its file "
                          f"({' '.join(str(exc).split())})") from None
    for kind, arrays in (("params", model.params), ("state", model.state)):
        for name, value in arrays.items():
            if not np.isfinite(value).all():
                raise RefodeError(f"`model.{kind}[{name!r}]` holds non-finite values; "
                                  "refode.load refuses them: fix or retrain the model")
    return family, cfg


def write_model(group, model):
    """Write ``model`` into the h5py group (or file) ``group`` following the layout.

    Parameters
    ----------
    group : h5py.Group
    model : ContinuousNet or ContinuousTagger

    Raises
    ------
    RefodeError
        A model whose file :func:`refode.load` would refuse (:func:`check_writable`).
    """
    family, cfg = check_writable(model)
    group.attrs["format"] = text(FORMAT_NAME)
    group.attrs["format_version"] = np.int64(FORMAT_VERSION)
    group.attrs["refode_version"] = text(__version__)
    group.attrs["dtype"] = text(np.dtype(model.dtype).name)
    group.attrs["model"] = text(family)
    group.attrs["config"] = text(json.dumps(cfg, sort_keys=True))
    group.attrs[BACKEND] = text(model.backend.name)
    for kind, arrays in ((PARAMS, model.params), (STATE, model.state)):
        sub = group.create_group(kind)
        for name in sorted(arrays):
            write_array(sub, name, arrays[name])
    _, _, blocks = layout.shapes(family, cfg)
    sub = group.create_group(BLOCKS)
    for name, interval in blocks.items():
        attrs = sub.create_group(name).attrs
        attrs["basis"] = text(cfg["basis"])
        attrs["n_basis"] = np.int64(cfg["n_basis"])
        attrs["interval"] = np.asarray(interval, dtype=np.float64)
        attrs["scheme"] = text(cfg["scheme"])
        attrs["n_steps"] = np.int64(cfg["n_steps"])


def digest(value):
    """SHA-256 of an array's C-order bytes as 32 ``uint8``: the ``sha256`` attribute.

    Numeric, not a string: variable-length strings live on HDF5's global heap, where a
    damaged file can crash the HDF5 library.
    """
    raw = hashlib.sha256(np.asarray(value, order="C").tobytes()).digest()
    return np.frombuffer(raw, dtype=np.uint8)


def write_array(group, name, value):
    """One contiguous dataset with its ``sha256`` attribute (verified on load)."""
    value = np.asarray(value, order="C")      # keeps 0-d arrays 0-d
    group.create_dataset(name, data=value).attrs[CHECKSUM] = digest(value)


def save(model, path):
    """Save a model to an HDF5 file (``docs/format.md``), atomically.

    The file is written to a temporary file beside ``path`` and renamed onto it;
    on any failure nothing is left behind and an existing ``path`` is untouched.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
    path : str or os.PathLike

    Examples
    --------
    >>> refode.save(net, "net.h5"); net2 = refode.load("net.h5")   # doctest: +SKIP
    """
    check_writable(model)  # refuse a foreign or unloadable model before creating anything
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            write_model(fh, model)
