"""One cell of a sweep, computed on a Dask worker: change of basis, evaluation, record.

:func:`compute_cell` never raises for a cell that fails: it returns a record with
``status "failed"`` and the error, so that one bad cell does not stop the sweep.
``seconds`` is the time of the evaluation-mode forward passes over the data (after
one warm-up example, so that no compilation is timed), ``compress_seconds`` that of
the change of basis (with the recalibration). Everything but these two timings is a
deterministic function of the model file, the data and the cell: the computation runs
with one Numba and one BLAS thread in whichever process executes it.
"""
import contextlib
import os
import time
import warnings

import numpy as np

from ..errors import RefodeWarning
from ..io import load
from ..io.data import load_data
from ..io.layout import CONTINUOUS_NET, config_of
from ..io.summary import depth_dependent, relative_l2_error
from ..constants import IGNORE_INDEX
from ..train.collate import trim_padding
from ..train.evaluation import count_correct, count_nonfinite, predict
from .config import cell_id, resolve_cell

#: fields of a cell record, in the order of the CSV table.
FIELDS = ("id", "basis", "n_basis", "method", "stats", "scheme", "n_steps", "status",
          "accuracy", "loss", "nonfinite", "samples", "n_parameters", "depth_parameters",
          "l2_error", "nonpositive_stages", "seconds", "compress_seconds", "error")
#: fields that depend on the machine's load (excluded from reproducibility comparisons).
TIMING_FIELDS = ("seconds", "compress_seconds")

_CACHE = {}


def _cached(kind, paths, build):
    """``build()`` once per process for the same files (path, size and mtime)."""
    key = (kind, tuple((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths))
    if key not in _CACHE:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = build()
    return _CACHE[key]


@contextlib.contextmanager
def one_thread():
    """One Numba thread and one BLAS thread inside the block (results independent of
    the machine's thread count)."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1)
    try:
        with limits:
            yield
    finally:
        numba.set_num_threads(previous)


def cross_entropy(logits, y):
    """Mean cross-entropy (float64 log-softmax) over the predictions that count; NaN if
    a counted logit is not finite."""
    flat = np.asarray(logits, np.float64).reshape(-1, logits.shape[-1])
    t = np.asarray(y).reshape(-1)
    keep = t != IGNORE_INDEX
    flat, t = flat[keep], t[keep]
    top = flat.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(flat - top).sum(axis=1))
    return float(np.mean(lse - flat[np.arange(len(t)), t]))


def _failed(cell, exc):
    return {**{f: None for f in FIELDS}, **cell, "id": cell_id(cell), "status": "failed",
            "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]}


def compute_cell(cell, model_path, data_paths, calibration_paths, settings):
    """The record of one cell (a dict with the keys :data:`FIELDS`).

    Parameters
    ----------
    cell : dict
        Unresolved cell of :func:`refode.sweep.config.parse_config`.
    model_path : str
        Weight file.
    data_paths : list of str
        Evaluation data (formats of ``refode eval --data``).
    calibration_paths : list of str or None
        Images of ``stats="recalibrate"`` (None: the first ``settings["samples"]``
        images of the evaluation data).
    settings : dict
        ``samples``, ``batch_size``, ``limit``.
    """
    try:
        with one_thread():
            return _compute(cell, model_path, data_paths, calibration_paths, settings)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the cell's record
        try:
            cell = resolve_cell(cell, _cached("model", [model_path], lambda: load(model_path)))
        except Exception:  # noqa: BLE001
            pass
        return _failed(cell, exc)


def _compute(cell, model_path, data_paths, calibration_paths, settings):
    model = _cached("model", [model_path], lambda: load(model_path))
    cell = resolve_cell(cell, model)
    family, cfg = config_of(model)
    channels = cfg["in_channels"] if family == CONTINUOUS_NET else None
    x, y = _cached("data", data_paths, lambda: load_data(data_paths, channels))
    if settings.get("limit"):
        x, y = x[:settings["limit"]], y[:settings["limit"]]
    kwargs = {}
    if family == CONTINUOUS_NET:
        kwargs["stats"] = cell["stats"]
        if cell["stats"] == "recalibrate":
            paths = calibration_paths or data_paths
            images = _cached("data", paths, lambda: load_data(paths, channels))[0]
            kwargs["data"] = images[:settings["samples"]]
    elif cell["stats"] != "project":
        raise ValueError(f"a {family} has no running statistics; use stats 'project'")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RefodeWarning)  # counted in nonpositive_stages
        new = model.rediscretize(basis=cell["basis"], n_basis=cell["n_basis"],
                                 scheme=cell["scheme"], n_steps=cell["n_steps"],
                                 change=cell["method"], **kwargs)
    compress_seconds = time.perf_counter() - start
    collate = None if family == CONTINUOUS_NET else trim_padding
    if family == CONTINUOUS_NET:
        x = np.asarray(x, dtype=new.dtype)
    predict(new, x[:1], collate=collate)  # compiles the kernels: not in the timing
    start = time.perf_counter()
    logits = predict(new, x, batch_size=settings["batch_size"], collate=collate)
    seconds = time.perf_counter() - start
    correct, counted = count_correct(logits, y)
    nonfinite = count_nonfinite(logits, y)
    loss = cross_entropy(logits, y)
    before, after = depth_dependent(model), depth_dependent(new)
    arrays_a = {k: v for arrays in before.values() for k, v in arrays.items()}
    arrays_b = {k: v for arrays in after.values() for k, v in arrays.items()}
    blocks = [b for b in new.ode_blocks().values() if hasattr(b, "nonpositive_variances")]
    return {
        "id": cell_id(cell), **cell, "status": "ok",
        "accuracy": correct / counted, "loss": loss if np.isfinite(loss) else None,
        "nonfinite": nonfinite, "samples": counted, "n_parameters": new.num_parameters(),
        "depth_parameters": int(sum(a.size for a in arrays_b.values())),
        "l2_error": relative_l2_error(arrays_a, model.basis, arrays_b, new.basis),
        "nonpositive_stages": int(sum(len(b.nonpositive_variances()) for b in blocks)),
        "seconds": seconds, "compress_seconds": compress_seconds, "error": None,
    }
