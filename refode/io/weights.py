"""Writing a model into an HDF5 group and :func:`save` (atomic).

The layout is documented in ``docs/format.md``; :mod:`refode.io.read` is its reader.
"""
import hashlib
import json

import h5py
import numpy as np

from .. import __version__
from .._io import atomic_path
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
#: refuse configurations with more scalars than this (parameters + state) before allocating.
MAX_SCALARS = 100_000_000
#: refuse more basis functions or integration steps than these (absurd sizes).
MAX_N_BASIS, MAX_N_STEPS = 4096, 100_000
#: refuse ContinuousNets with more stages (widths) than this.
MAX_STAGES = 64


def text(value):
    """A string attribute value stored inline as fixed-length UTF-8.

    Variable-length strings live on HDF5's global heap, where a damaged file can crash
    or hang the HDF5 library; fixed-length ones sit in the attribute itself. h5py reads
    them back as ``bytes`` (``.decode()`` them).
    """
    raw = value.encode("utf-8")
    return np.array(raw, dtype=h5py.string_dtype("utf-8", max(len(raw), 1)))


def write_model(group, model):
    """Write ``model`` into the h5py group (or file) ``group`` following the layout.

    Parameters
    ----------
    group : h5py.Group
    model : ContinuousNet or ContinuousTagger
    """
    family, cfg = layout.config_of(model)
    group.attrs["format"] = text(FORMAT_NAME)
    group.attrs["format_version"] = np.int64(FORMAT_VERSION)
    group.attrs["refode_version"] = text(__version__)
    group.attrs["dtype"] = text(np.dtype(model.dtype).name)
    group.attrs["model"] = text(family)
    group.attrs["config"] = text(json.dumps(cfg, sort_keys=True))
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
    layout.config_of(model)  # refuse a foreign object before creating anything
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            write_model(fh, model)
