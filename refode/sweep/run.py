"""Run a sweep's cells as tasks on Dask ``distributed``, persisting every finished cell.

- Cluster: an existing ``distributed`` scheduler (``scheduler="tcp://host:8786"``; the
  model and data paths must be readable by its workers, e.g. on a shared file system)
  or, by default, a :class:`distributed.LocalCluster` of worker *processes* with one
  thread each (Dask's nannies start them with ``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to 1). Every task runs with
  one Numba and one BLAS thread (:func:`refode.sweep.cell.one_thread`:
  ``numba.set_num_threads(1)`` and threadpoolctl, on any cluster), so the results are
  bitwise identical whatever the number of workers. ``NUMBA_NUM_THREADS`` is not
  set: the nannies copy their environment into this process's ``os.environ``, and
  Numba refuses to compile in a process whose ``NUMBA_NUM_THREADS`` changed after
  its threads started.
- Persistence: every finished cell (also a failed one: its record holds the error) is
  written atomically to ``OUT/cells/<id>.json`` as soon as it completes. A rerun
  with the same ``OUT`` reuses those files and computes only the missing cells
  (``retry_failed=True`` also recomputes the failed ones). ``OUT/manifest.json``
  holds the SHA-256 of the model and data files; a rerun on other files is refused.
- A worker that dies is replaced by the cluster and its tasks are rerun elsewhere
  (Dask's own rescheduling); a task that kills its workers repeatedly is recorded as
  failed (``KilledWorker``).
- Progress: :func:`distributed.progress` (Dask's own display).
"""
import hashlib
import json
import logging
import os

from .. import _io
from ..errors import RefodeError
from .cell import FIELDS, compute_cell
from .config import load_config, parse_config
from .report import write_report

#: subfolder of OUT with one JSON file per finished cell.
CELLS = "cells"
MANIFEST = "manifest.json"
#: bytes read at a time when hashing input files.
HASH_CHUNK = 1 << 20


def _distributed():
    try:
        import distributed
    except ImportError:
        raise RefodeError("refode sweep needs Dask distributed: pip install "
                          "'refode[sweep]'") from None
    return distributed


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SweepResult:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    rows : list of dict
        One record per cell (keys :data:`refode.sweep.cell.FIELDS`), in grid order.
    computed, reused : list of str
        Ids of the cells computed by this run and of those read from ``OUT/cells``.
    paths : dict
        ``"csv"``, ``"json"``, ``"pareto_parameters"``, ``"pareto_time"`` -> file path.
    """

    def __init__(self, rows, computed, reused, paths):
        self.rows, self.computed, self.reused, self.paths = rows, computed, reused, paths


def _manifest(cfg, data):
    files = {"model": [cfg["model"]], "data": list(data),
             "calibration": list(cfg["calibration"] or [])}
    return {"files": {k: [{"path": p, "sha256": _sha256(p)} for p in v]
                      for k, v in files.items()},
            "settings": {k: cfg[k] for k in ("samples", "batch_size", "limit")}}


def _check_manifest(out, manifest):
    path = os.path.join(out, MANIFEST)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
        strip = {k: [f["sha256"] for f in v] for k, v in old.get("files", {}).items()}
        new = {k: [f["sha256"] for f in v] for k, v in manifest["files"].items()}
        if strip != new or old.get("settings") != manifest["settings"]:
            raise RefodeError(f"{out} holds a sweep of other model/data files or settings; "
                              "choose another --out or remove that folder")
    _io.write_text(path, json.dumps(manifest, indent=1) + "\n")


def _read_cells(folder):
    done = {}
    if not os.path.isdir(folder):
        return done
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and not name.startswith("."):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    record = json.load(fh)
            except (OSError, ValueError):
                continue  # unreadable: computed again
            if isinstance(record, dict) and record.get("id") == name[:-len(".json")]:
                done[record["id"]] = record
    return done


def _persist(folder, record):
    _io.write_text(os.path.join(folder, f"{record['id']}.json"),
                   json.dumps(record, indent=1) + "\n")


def _resolved_cells(cfg):
    """``{id: resolved cell}`` of the cells (resolved against the model), in grid order."""
    from ..io import load
    from .config import cell_id, resolve_cell

    model = load(cfg["model"])
    resolved = [resolve_cell(c, model) for c in cfg["cells"]]
    return [cell_id(c) for c in resolved], resolved


def write_inputs(out, x, y, x_calibration, config):
    """Write a sweep's inputs into ``out``: ``data/test.npz``, ``data/calibration.npz``
    (labels zero: recalibration reads images only) and the JSON ``sweep.json``.

    Parameters
    ----------
    out : str
        Folder (created).
    x, y : test images ``(n, C, H, W)`` and labels ``(n,)``
    x_calibration : images ``(m, C, H, W)`` for ``stats="recalibrate"``
    config : dict
        The sweep configuration (:mod:`refode.sweep.config`).

    Returns
    -------
    config_path, test_path : str
    """
    import numpy as np

    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    for name, arrays in (("test.npz", {"x": x, "y": y}),
                         ("calibration.npz", {"x": x_calibration,
                                              "y": np.zeros(len(x_calibration), np.int64)})):
        with _io.atomic_path(os.path.join(data, name)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    config_path = os.path.join(out, "sweep.json")
    _io.write_text(config_path, json.dumps(config, indent=1) + "\n")
    return config_path, os.path.join(data, "test.npz")


def _client(distributed, scheduler, n_workers, processes):
    """``(client, cluster)``: a client of ``scheduler`` or of a new LocalCluster."""
    if scheduler is not None:
        return distributed.Client(scheduler), None
    cluster = distributed.LocalCluster(
        n_workers=n_workers or min(os.cpu_count() or 1, 4), threads_per_worker=1,
        processes=processes, dashboard_address=":0", silence_logs=logging.CRITICAL)
    return distributed.Client(cluster), cluster


def run_sweep(config, data, out, *, scheduler=None, client=None, n_workers=None,
              processes=True, progress=True, retry_failed=False, workers=None,
              on_result=None):
    """Evaluate every cell of a sweep on Dask and write its table and Pareto plots.

    Parameters
    ----------
    config : str or dict
        Path of the JSON configuration, or the decoded object (relative paths then
        resolve against the current folder); see :mod:`refode.sweep.config`.
    data : list of str
        Evaluation data: one ``.npz`` (``x``, ``y``) or IMAGES LABELS in IDX format.
    out : str
        Output folder: ``cells/``, ``manifest.json``, ``results.csv``,
        ``results.json``, ``pareto_parameters.png``, ``pareto_time.png``.
    scheduler : str, optional
        Address of an existing scheduler (default: a new LocalCluster).
    client : distributed.Client, optional
        Use this client (and its cluster) instead; it is not closed.
    n_workers : int, optional
        Workers of the LocalCluster (default: the CPU count, at most 4).
    processes : bool
        LocalCluster of processes (default) or of threads in this process (reuses
        the kernels this process has compiled; one thread, so still sequential).
    progress : bool
        Show Dask's progress bar.
    retry_failed : bool
        Also recompute cells recorded as failed.
    workers : list of str, optional
        Run every task on these workers only (e.g. one worker of a bigger cluster).
    on_result : callable, optional
        Called with each record as it is persisted (from Dask's callback thread).

    Returns
    -------
    SweepResult
    """
    cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else parse_config(config)
    data = [os.path.abspath(os.fspath(p)) for p in data]
    if not 1 <= len(data) <= 2:
        raise RefodeError("`data` takes one .npz, or two IDX files (images labels)")
    for path in [cfg["model"], *data, *(cfg["calibration"] or [])]:
        if not os.path.isfile(path):
            raise RefodeError(f"{path}: no such file; check the configuration and --data")
    out = os.fspath(out)
    folder = os.path.join(out, CELLS)
    os.makedirs(folder, exist_ok=True)
    _check_manifest(out, _manifest(cfg, data))
    ids, resolved = _resolved_cells(cfg)
    done = _read_cells(folder)
    reused = [i for i in dict.fromkeys(ids) if i in done
              and (done[i]["status"] == "ok" or not retry_failed)]
    todo = {}
    for cell, i in zip(resolved, ids):
        if i not in reused and i not in todo:
            todo[i] = cell
    records = {i: done[i] for i in reused}
    if todo:
        records.update(_compute_all(cfg, data, todo, folder, scheduler, client, n_workers,
                                    processes, progress, workers, on_result))
    rows = [records[i] for i in dict.fromkeys(ids)]
    paths = write_report(rows, out)
    return SweepResult(rows, list(todo), reused, paths)


def _compute_all(cfg, data, todo, folder, scheduler, client, n_workers, processes, progress,
                 workers, on_result):
    distributed = _distributed()
    own = client is None
    cluster = None
    if own:
        client, cluster = _client(distributed, scheduler, n_workers, processes)
    settings = {k: cfg[k] for k in ("samples", "batch_size", "limit")}

    def persist(future):
        if future.status == "finished":
            record = future.result()
            _persist(folder, record)
            if on_result is not None:
                on_result(record)

    try:
        futures = {}
        for i, cell in todo.items():
            future = client.submit(compute_cell, cell, cfg["model"], data, cfg["calibration"],
                                   settings, pure=False, workers=workers,
                                   key=f"refode-sweep-{i}-{os.urandom(4).hex()}")
            future.add_done_callback(persist)
            futures[i] = future
        if progress:
            distributed.progress(list(futures.values()))
        distributed.wait(list(futures.values()))
        records = {}
        for i, future in futures.items():
            if future.status == "finished":
                records[i] = future.result()
                if os.path.exists(os.path.join(folder, f"{i}.json")):
                    continue  # written by the callback
            else:  # e.g. KilledWorker: the task killed its workers repeatedly
                exc = future.exception()
                records[i] = {**{f: None for f in FIELDS}, **todo[i], "id": i,
                              "status": "failed",
                              "error": f"{type(exc).__name__}: {exc}"[:500]}
            _persist(folder, records[i])
        return records
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
