"""Reading and validating the HDF5 layout of ``docs/format.md``; :func:`load`.

Everything is checked before a model is built: attributes, the configuration, sizes
(against :data:`~refode.io.weights.MAX_SCALARS` before any allocation), the basis,
the scheme, then every dataset's presence, kind, dtype, shape, storage (fully written),
``sha256`` checksum (when present) and finiteness. Every
problem raises :class:`refode.errors.FormatError` whose message starts with the path
inside the file and says how to fix it. The model is built on the file's ``backend``
(``"cpu"`` when the attribute is absent) unless :func:`load` is told another.
"""
import contextlib
import os

import h5py
import numpy as np

from ..backend import NAMES as BACKENDS, get as get_backend
from ..errors import FormatError, RefodeError
from . import layout
from ._h5 import READ_ERRORS, attr, fail, group, int_attr, join, reading, str_attr
from .config import check_config
from .variances import warn_nonpositive
from .weights import (BACKEND, BLOCKS, CHECKSUM, DEFAULT_BACKEND, FORMAT_NAME, PARAMS,
                      READ_VERSIONS, STATE, digest)

#: dtypes a file may declare.
DTYPES = ("float32", "float64")
#: ``format`` of a golden file, whose ``/model`` group :func:`load` reads.
GOLDEN_FORMAT = "refode-golden"
#: members of a weight group.
MEMBERS = (BLOCKS, PARAMS, STATE)


def read_header(obj, where):
    """Validate the attributes of a weight group; returns ``(family, config, dtype)``."""
    name = str_attr(obj, "format", where)
    if name != FORMAT_NAME:
        fail(f"{where or '/'}@format", f"is {name!r:.60}, not {FORMAT_NAME!r}",
             "this is not a refode weight file: export it with refode.save")
    version = int_attr(obj, "format_version", where)
    if version not in READ_VERSIONS:
        fail(f"{where or '/'}@format_version", f"is {version}, this refode reads versions "
             f"{', '.join(map(str, READ_VERSIONS))}",
             f"upgrade refode or re-export the file in version {READ_VERSIONS[-1]}")
    str_attr(obj, "refode_version", where)
    dtype = str_attr(obj, "dtype", where)
    if dtype not in DTYPES:
        fail(f"{where or '/'}@dtype", f"is {dtype!r:.60}", f"use one of {', '.join(DTYPES)}")
    family = str_attr(obj, "model", where)
    if family not in layout.MODELS:
        fail(f"{where or '/'}@model", f"unknown model {family!r:.60}",
             f"use one of {', '.join(layout.MODELS)}")
    cfg = check_config(family, str_attr(obj, "config", where), where, version)
    return family, cfg, dtype


def read_backend(obj, where):
    """The name in the optional ``backend`` attribute (``"cpu"`` when absent), validated."""
    if BACKEND not in obj.attrs:
        return DEFAULT_BACKEND
    name = str_attr(obj, BACKEND, where)
    if name not in BACKENDS:
        fail(f"{where or '/'}@{BACKEND}", f"unknown backend {name!r:.60}",
             f"use one of {', '.join(BACKENDS)} (or leave the attribute out: cpu)")
    return name


def model_backend(obj, where, backend=None):
    """The :class:`refode.backend.Backend` to build the model of ``obj`` on: ``backend``
    if given, else the file's (a FormatError saying what to pass when it cannot run here,
    e.g. ``"cuda"`` without a GPU)."""
    if backend is not None:
        return get_backend(backend)
    name = read_backend(obj, where)
    try:
        return get_backend(name)
    except RefodeError as exc:
        fail(f"{where or '/'}@{BACKEND}", f"the file's backend {name!r} cannot run here "
             f"({' '.join(str(exc).split())})",
             "pass another, e.g. refode.load(path, backend='cpu')")

def _shape_problem(name, got, want, blocks, n_basis):
    if layout.block_of(name, blocks) and len(got) == len(want) and got[1:] == want[1:]:
        return (f"shape {got} but n_basis = {n_basis} needs leading axis {n_basis}",
                f"write ({n_basis}, ...) coefficients or fix n_basis in the configuration")
    return (f"shape {got}, expected {want} from the configuration",
            "write the array in the layout of docs/format.md")


def read_arrays(parent, kind, expected, dtype, where, context):
    """Validated arrays of group ``kind``: exact names, dtype, shape, finite values.

    ``context`` is ``(blocks, n_basis)`` for the messages about the basis axis.
    """
    sub_where = join(where, kind)
    sub = group(parent, kind, where)
    with reading(sub_where):
        names = set(sub.keys())
    missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
    if missing:
        fail(join(sub_where, missing[0]), f"dataset missing ({len(missing)} missing)",
             "write every array listed in docs/format.md")
    if extra:
        fail(join(sub_where, extra[0]), "unknown dataset for this configuration",
             "remove it or fix the configuration")
    return {name: read_array(sub, name, expected[name], dtype, sub_where, context)
            for name in sorted(expected)}


def read_array(sub, name, shape, dtype, where, context):
    """One validated dataset (see :func:`read_arrays`)."""
    path = join(where, name)
    with reading(path):
        obj = sub[name]
        if not isinstance(obj, h5py.Dataset):
            fail(path, "must be a dataset, found a group", "write the array as a dataset")
        if obj.dtype != np.dtype(dtype):
            fail(path, f"dtype {obj.dtype} but the file's dtype is {dtype}",
                 f"write it as little-endian {dtype}")
        if obj.shape != tuple(shape):
            fail(path, *_shape_problem(name, obj.shape, tuple(shape), *context))
        data = verified(obj, path)
    if not np.isfinite(data).all():
        fail(path, f"{data.size - np.count_nonzero(np.isfinite(data))} non-finite value(s)",
             "replace NaN/Inf before exporting")
    return data


def verified(obj, path):
    """The data of dataset ``obj``: storage fully written and its ``sha256`` matching."""
    with reading(path):
        check_storage(obj, path)
        data = np.asarray(obj[()], order="C")
        stored = np.asarray(obj.attrs[CHECKSUM]) if CHECKSUM in obj.attrs else None
    if stored is not None and not np.array_equal(stored, digest(data)):
        fail(path, "data does not match its sha256 attribute",
             "the file is damaged: re-export it (or drop the attribute after editing)")
    return data


def check_storage(obj, path):
    """Refuse a dataset whose data is not all written (HDF5 would read fill values).

    Contiguous and compact datasets must store ``nbytes``; a chunked one must have every
    chunk allocated, at a valid chunk position (a damaged chunk index loses chunks).
    """
    if obj.size == 0:
        return
    if obj.chunks is None:
        if obj.id.get_storage_size() < obj.nbytes:
            fail(path, "data not (fully) written: it would read as fill values",
                 "the file is damaged: re-export it")
        return
    grid = [-(-n // c) for n, c in zip(obj.shape, obj.chunks)]
    seen = set()
    for i in range(obj.id.get_num_chunks()):
        offset = obj.id.get_chunk_info(i).chunk_offset
        if any(o % c or o >= n for o, c, n in zip(offset, obj.chunks, obj.shape)):
            fail(path, f"chunk index damaged (chunk at {offset})",
                 "the file is damaged: re-export it")
        seen.add(offset)
    if len(seen) != int(np.prod(grid)):
        fail(path, f"{int(np.prod(grid)) - len(seen)} chunk(s) missing: they would read as "
             "fill values", "the file is damaged: re-export it")


def check_blocks(parent, cfg, blocks, where):
    """The ``blocks`` group: one group per ODE-block whose attributes match the config."""
    sub_where = join(where, BLOCKS)
    sub = group(parent, BLOCKS, where)
    with reading(sub_where):
        names = set(sub.keys())
    for name in sorted(names - set(blocks)):
        fail(join(sub_where, name), "unknown ODE-block", f"blocks are {', '.join(blocks)}")
    for name, interval in blocks.items():
        path = join(sub_where, name)
        obj = group(sub, name, sub_where)
        for key in ("basis", "scheme"):
            if str_attr(obj, key, path) != cfg[key]:
                fail(f"{path}@{key}", f"differs from the configuration ({cfg[key]!r})",
                     "make them agree")
        for key in ("n_basis", "n_steps"):
            if int_attr(obj, key, path) != cfg[key]:
                fail(f"{path}@{key}", f"differs from the configuration ({cfg[key]})",
                     "make them agree")
        with reading(f"{path}@interval"):
            got = np.asarray(attr(obj, "interval", path), dtype=np.float64)
        if got.shape != (2,) or not np.array_equal(got, interval):
            fail(f"{path}@interval", f"is {got.tolist()!s:.60}, expected {list(interval)}",
                 "write the block's depth interval [t0, t1]")


def read_model(obj, where="", backend=None):
    """Validate the weight layout at ``obj`` (file or group) and build the model on
    ``backend`` (None: the file's, see :func:`model_backend`)."""
    family, cfg, dtype = read_header(obj, where)
    backend = model_backend(obj, where, backend)
    with reading(where or "/"):
        members = set(obj.keys())
    for name in sorted(members - set(MEMBERS)):
        fail(join(where, name), "unknown member of a weight group",
             f"remove it (a weight group holds {', '.join(MEMBERS)})")
    params, state, blocks = layout.shapes(family, cfg)
    check_blocks(obj, cfg, blocks, where)
    context = (blocks, cfg["n_basis"])
    arrays = read_arrays(obj, PARAMS, params, dtype, where, context)
    stats = read_arrays(obj, STATE, state, dtype, where, context)
    return build(family, cfg, dtype, arrays, stats, backend)


def build(family, cfg, dtype, params, state, backend=DEFAULT_BACKEND):
    """A model of ``family`` and ``cfg`` on ``backend`` holding exactly the given arrays."""
    from ..models import FAMILIES

    model = FAMILIES[family].from_config(cfg, dtype=dtype, backend=backend)
    for live, arrays in ((model.params, params), (model.state, state)):
        for name, value in arrays.items():
            live[name][...] = value
    return model


def load(path, backend=None):
    """Load a model saved by :func:`refode.save` (or any writer of ``docs/format.md``).

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend, optional
        The model's backend; default: the one the file records (its ``backend``
        attribute; ``"cpu"`` for a file without one, such as every file written before
        refode recorded it).

    Returns
    -------
    ContinuousNet or ContinuousTagger
        Arrays bitwise equal to the file's (for a golden file: its ``/model``).

    Raises
    ------
    FormatError
        The file is not HDF5 or breaks the layout; the message starts with the path
        inside the file (``/params/block1.conv1.weight: ...``) and says how to fix it.
        A file whose backend cannot run here (``/@backend: the file's backend 'cuda'
        cannot run here (...); pass another, ...``) when ``backend`` is left out.
    RefodeError
        ``backend`` is unknown or cannot run here (CUDA without numba-cuda or a GPU).

    Warns
    -----
    RefodeWarning
        A running variance of an ODE-block is ``<= -eps`` at a stage (evaluation
        gives NaN there); the message names the block, the array and the stage
        (:func:`refode.io.variances.nonpositive_stages`).
    """
    backend = None if backend is None else get_backend(backend)   # before any work
    with open_h5(path) as fh:
        if "format" in fh.attrs and str_attr(fh, "format", "") == GOLDEN_FORMAT:
            model, where = read_model(group(fh, "model", ""), "/model", backend), "/model"
        else:
            model, where = read_model(fh, "", backend), ""
    warn_nonpositive(model, f"{os.fspath(path)}{where}")
    return model


def file_format(path):
    """The ``format`` attribute (``"refode-weights"``, ``"refode-golden"``) of the file at
    ``path``, or ``None`` for a file that is not HDF5 or has no text ``format``."""
    try:
        if not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as fh:
            value = fh.attrs.get("format")
    except READ_ERRORS:
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


@contextlib.contextmanager
def open_h5(path):
    """Open an HDF5 file for reading; a foreign or damaged file raises FormatError."""
    try:
        fh = h5py.File(path, "r")
    except FileNotFoundError:
        raise FormatError(f"/: file {path!s} does not exist; check the path") from None
    except READ_ERRORS as exc:
        detail = " ".join(str(exc).split())
        raise FormatError(f"/: {path!s} is not a readable HDF5 file ({detail}); pass a file "
                          "written by refode.save") from None
    with fh, reading("/"):
        yield fh
