"""Golden vectors: a model, a batch, and refode's outputs, loss and gradients.

Layout (``docs/format.md``, "Golden files"): root attributes ``format =
"refode-golden"``, ``format_version``, ``refode_version``, ``dtype``, ``model``,
``scheme``, ``n_steps``, ``mode``, ``rtol``, ``atol``; the weights under ``/model`` in
the weight layout; ``/inputs/x``, ``/inputs/y``; ``/outputs/logits``, ``/outputs/loss``;
``/gradients/params/<name>`` and ``/gradients/inputs/<x | embedded>``; a training-mode
file of a ContinuousNet also holds ``/outputs/state/<name>``, the running statistics
after the step (files written before refode stored them, and version-1 files, have
none). A candidate file from another implementation holds (at least) ``/outputs`` and
``/gradients`` with the same names and shapes, in real floats; :func:`compare` checks
it array by array.
"""
import h5py
import numpy as np

from .. import __version__
from .._io import atomic_path
from ..errors import FormatError
from . import layout
from ._h5 import fail, group, int_attr, reading, str_attr
from .read import GOLDEN_FORMAT, open_h5, read_model, verified
from .reference import INPUT_GRADIENT, MODES, STATE, compute
from .weights import FORMAT_VERSION, READ_VERSIONS, text, write_array, write_model

#: default tolerances per dtype: ``|candidate - golden| <= atol + rtol * |golden|``.
TOLERANCES = {"float64": (1e-9, 1e-13), "float32": (1e-4, 1e-6)}
#: groups holding the arrays that :func:`compare` checks.
COMPARED = ("outputs", "gradients")
#: group of the model inside a golden file.
MODEL = "model"
#: first format version whose training-mode golden files may store the running
#: statistics after the step (``/outputs/state``).
STATE_VERSION = 2


def write(path, model, x, y, mode="train", rtol=None, atol=None):
    """Compute the golden vectors of ``model`` on ``(x, y)`` and write them atomically.

    Parameters
    ----------
    path : str or os.PathLike
    model : ContinuousNet or ContinuousTagger
    x, y : inputs and targets
    mode : {"train", "eval"}
    rtol, atol : float, optional
        Tolerances stored for :func:`compare` (default :data:`TOLERANCES` of the dtype).

    Returns
    -------
    dict of the computed arrays (``"outputs/logits"``, ...)
    """
    family, cfg = layout.config_of(model)
    dtype = np.dtype(model.dtype).name
    default_rtol, default_atol = TOLERANCES[dtype]
    arrays = compute(model, x, y, mode)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        attrs = fh.attrs
        attrs["format"], attrs["format_version"] = text(GOLDEN_FORMAT), np.int64(FORMAT_VERSION)
        attrs["refode_version"], attrs["dtype"] = text(__version__), text(dtype)
        attrs["model"], attrs["scheme"] = text(family), text(cfg["scheme"])
        attrs["n_steps"], attrs["mode"] = np.int64(cfg["n_steps"]), text(mode)
        attrs["rtol"] = float(default_rtol if rtol is None else rtol)
        attrs["atol"] = float(default_atol if atol is None else atol)
        write_model(fh.create_group(MODEL), model)
        write_array(fh, "inputs/x", np.asarray(x))
        write_array(fh, "inputs/y", np.asarray(y, dtype=np.int64))
        for name, value in arrays.items():
            write_array(fh, name, value)
    return arrays


def _datasets(fh, group_name):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[f"{group_name}/{name}"] = obj

    with reading(f"/{group_name}"):
        if group_name in fh:
            fh[group_name].visititems(visit)
    return out


def _expected(model, with_state=False):
    """``{name: shape}`` of the compared arrays of a golden file (``None``: any shape);
    ``with_state`` adds the running statistics after a training step."""
    family, _ = layout.config_of(model)
    out = {"outputs/logits": None, "outputs/loss": (),
           f"gradients/inputs/{INPUT_GRADIENT[family]}": None}
    out.update({f"gradients/params/{k}": v.shape for k, v in model.params.items()})
    if with_state:
        out.update({f"{STATE}/{k}": v.shape for k, v in model.state.items()})
    return out


def _check_state(arrays, mode, version):
    """Whether the golden file stores running statistics (all or none, train mode only)."""
    stored = any(name.startswith(f"{STATE}/") for name in arrays)
    if stored and (mode != "train" or version < STATE_VERSION):
        fail(f"/{STATE}", f"running statistics in a golden file of mode {mode!r} and "
             f"version {version}", f"only mode 'train' files of version >= {STATE_VERSION} "
             "store them: remove them or regenerate the file with `refode golden`")
    return stored


def _check_arrays(arrays, model, with_state=False):
    expected = _expected(model, with_state)
    for name in sorted(set(expected) - set(arrays)):
        fail(f"/{name}", "dataset missing", "regenerate the golden file with `refode golden`")
    for name in sorted(set(arrays) - set(expected)):
        fail(f"/{name}", "unknown dataset in a golden file", "remove it")
    for name, shape in expected.items():
        arr = arrays[name]
        if arr.dtype != model.dtype or (shape is not None and arr.shape != shape):
            fail(f"/{name}", f"shape {arr.shape} dtype {arr.dtype}, expected "
                 f"{shape or 'any shape'} {model.dtype}", "regenerate the golden file")
        if not np.isfinite(arr).all():
            fail(f"/{name}", "non-finite values", "regenerate the golden file")


def read_golden(fh):
    """Validate a golden file; returns ``(tolerances, model, {name: array})``."""
    fmt = str_attr(fh, "format", "")
    if fmt != GOLDEN_FORMAT:
        fail("/@format", f"is {fmt!r:.60}, not {GOLDEN_FORMAT!r}",
             "pass a golden file written by `refode golden`")
    if int_attr(fh, "format_version", "") not in READ_VERSIONS:
        fail("/@format_version", "unknown version",
             f"this refode reads versions {', '.join(map(str, READ_VERSIONS))}")
    tol = {}
    for key in ("rtol", "atol"):
        with reading(f"/@{key}"):
            tol[key] = float(fh.attrs[key])
        if not (np.isfinite(tol[key]) and tol[key] >= 0):
            fail(f"/@{key}", f"is {tol[key]}", "store a finite tolerance >= 0")
    mode = str_attr(fh, "mode", "")
    if mode not in MODES:
        fail("/@mode", "unknown mode", f"use one of {', '.join(MODES)}")
    model = read_model(group(fh, MODEL, ""), "/model")
    arrays = {}
    for group_name in COMPARED:
        for name, ds in _datasets(fh, group_name).items():
            arrays[name] = verified(ds, f"/{name}")
    _check_arrays(arrays, model, _check_state(arrays, mode, int_attr(fh, "format_version", "")))
    return tol, model, arrays


def read_candidate(fh):
    """The arrays under ``/outputs`` and ``/gradients`` of a candidate file."""
    arrays = {}
    for group_name in COMPARED:
        for name, ds in _datasets(fh, group_name).items():
            arrays[name] = verified(ds, f"/{name}")
    if not arrays:
        raise FormatError("/outputs: the candidate holds no /outputs or /gradients arrays; "
                          "write them in the layout of docs/format.md")
    for name, arr in sorted(arrays.items()):
        if np.iscomplexobj(arr):
            raise FormatError(f"/{name}: complex dtype {arr.dtype}, but golden arrays are "
                              "real; write the real float32/float64 values (an imaginary "
                              "part is never compared away)")
    return arrays


def compare_row(name, ref, cand, rtol, atol):
    """The verdict on one array (docs/format.md section 3.4, the rule of ``refode check``).

    Returns
    -------
    dict with ``array, shape, max_abs, max_rel, passed, note``; ``note`` names why a
    candidate fails before any arithmetic (``"missing"``, its shape, dtype, ``"non-finite"``).
    """
    row = {"array": "/" + name, "shape": tuple(np.shape(ref)), "max_abs": np.nan,
           "max_rel": np.nan, "passed": False, "note": ""}
    if cand is None:
        row["note"] = "missing"
    elif np.shape(cand) != np.shape(ref):
        row["note"] = f"shape {np.shape(cand)}"
    elif not np.issubdtype(np.asarray(cand).dtype, np.number):
        row["note"] = f"dtype {np.asarray(cand).dtype}"
    elif not np.isfinite(cand).all():
        row["note"] = "non-finite"
    else:
        ref64, cand64 = (np.asarray(a, dtype=np.float64) for a in (ref, cand))
        err = np.abs(cand64 - ref64)
        row["max_abs"] = float(err.max(initial=0.0))
        rel = err / np.maximum(np.abs(ref64), np.finfo(np.float64).tiny)
        row["max_rel"] = float(rel.max(initial=0.0))
        row["passed"] = bool(np.all(err <= atol + rtol * np.abs(ref64)))
    return row


def compare(golden, candidate, rtol=None, atol=None):
    """Compare a candidate file with a golden file, array by array.

    Parameters
    ----------
    golden, candidate : str or os.PathLike
    rtol, atol : float, optional
        Override the tolerances stored in the golden file.

    Returns
    -------
    rows : list of dict (``array, shape, max_abs, max_rel, passed, note``)
    rtol, atol : the tolerances used
    """
    with open_h5(golden) as fh:
        tol, _, reference = read_golden(fh)
    with open_h5(candidate) as fh:
        cand = read_candidate(fh)
    rtol = tol["rtol"] if rtol is None else float(rtol)
    atol = tol["atol"] if atol is None else float(atol)
    rows = [compare_row(name, ref, cand.get(name), rtol, atol)
            for name, ref in reference.items()]
    return rows, rtol, atol
