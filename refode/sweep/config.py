"""The JSON configuration of ``refode sweep``: a model file and a grid of cells.

::

    {
      "model": "model.h5",
      "grid": {"basis": ["piecewise_constant", "fem_linear", "legendre"],
               "n_basis": [4, 2], "method": ["projection"],
               "stats": ["project", "recalibrate", "positive"],
               "scheme": ["euler"], "n_steps": ["K", 8]},
      "calibration": {"data": ["train.npz"], "samples": 512},
      "batch_size": 256,
      "limit": null
    }

- ``model``: the weight file (relative paths are relative to the configuration file).
- ``grid``: one dict or a list of dicts (their cells are concatenated, duplicates
  dropped). Every key is a list; a missing key takes its default:
  ``basis`` (family; default ``null``: the model's), ``n_basis`` (``K``; ``null``: the
  model's), ``method`` (``"projection"`` or ``"interpolation"``; default projection),
  ``stats`` (``"project"``, ``"recalibrate"``, ``"positive"``; default project),
  ``scheme`` (``null``: the model's) and ``n_steps`` (``N``; ``null``: the model's,
  ``"K"``: equal to the cell's ``K``). The cells are the product, in this key order.
- ``calibration`` (optional): the images ``stats="recalibrate"`` re-estimates the
  statistics on, in the formats of ``refode eval --data``; default: the first
  ``samples`` (default :data:`CALIBRATION_SAMPLES`) images of the sweep's ``--data``.
- ``batch_size``: images (sentences) per forward pass; ``limit``: evaluate only the
  first ``limit`` examples of ``--data``.
"""
import itertools
import json
import os

from ..bases import families
from ..errors import RefodeError
from ..integrate.tableau import tableaus
from ..models.rediscretize import METHODS, STATS_POLICIES

#: grid keys, in the order of the product (and of a cell's id).
GRID_KEYS = ("basis", "n_basis", "method", "stats", "scheme", "n_steps")
#: defaults of the grid keys (``None``: the model's value).
GRID_DEFAULTS = {"basis": None, "n_basis": None, "method": "projection", "stats": "project",
                 "scheme": None, "n_steps": None}
#: ``n_steps`` entry meaning "N = K of the cell".
SAME_AS_K = "K"
#: default images of the calibration data.
CALIBRATION_SAMPLES = 512
#: default examples per forward pass.
BATCH_SIZE = 256
#: top-level keys of a configuration.
TOP_KEYS = ("model", "grid", "calibration", "batch_size", "limit")


def _positive_int(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RefodeError(f"{where} must be a positive integer, got {value!r:.40}")
    return value


def _entry(key, value, where):
    """Validate one grid value (``None`` means the model's)."""
    if value is None:
        return None
    choices = {"basis": families(), "method": METHODS, "stats": STATS_POLICIES,
               "scheme": tableaus()}
    if key in choices:
        if value not in choices[key]:
            raise RefodeError(f"{where}: unknown {key} {value!r:.40}; choose one of "
                              f"{', '.join(choices[key])}")
        return value
    if key == "n_steps" and value == SAME_AS_K:
        return value
    return _positive_int(value, where)


def _grid_cells(grid, where):
    if not isinstance(grid, dict):
        raise RefodeError(f"{where} must be an object of lists, e.g. "
                          '{"basis": ["legendre"], "n_basis": [2, 4]}')
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise RefodeError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys are "
                          f"{', '.join(GRID_KEYS)}")
    axes = []
    for key in GRID_KEYS:
        values = grid.get(key, [GRID_DEFAULTS[key]])
        if not isinstance(values, list) or not values:
            raise RefodeError(f"{where}.{key} must be a non-empty list, got {values!r:.40}")
        axes.append([_entry(key, v, f"{where}.{key}") for v in values])
    return [dict(zip(GRID_KEYS, combo)) for combo in itertools.product(*axes)]


def resolve_cell(cell, model):
    """The cell with every ``None``/``"K"`` replaced by the model's values."""
    out = dict(cell)
    for key, value in (("basis", model.basis.family), ("n_basis", model.basis.n),
                       ("scheme", model.scheme), ("n_steps", model.n_steps)):
        if out[key] is None:
            out[key] = value
    if out["n_steps"] == SAME_AS_K:
        out["n_steps"] = out["n_basis"]
    return out


def cell_id(cell):
    """File-name-safe id of a resolved cell.

    E.g. ``legendre-K2-projection-recalibrate-euler-N8``.
    """
    return (f"{cell['basis']}-K{cell['n_basis']}-{cell['method']}-{cell['stats']}-"
            f"{cell['scheme']}-N{cell['n_steps']}")


def _paths(value, where, folder):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not 1 <= len(value) <= 2 or not all(
            isinstance(v, str) for v in value):
        raise RefodeError(f"{where} must be a path or a list of one .npz or two IDX paths")
    return [os.path.abspath(os.path.join(folder, v)) for v in value]


def parse_config(raw, folder="."):
    """Validated configuration from a decoded JSON object.

    Parameters
    ----------
    raw : dict
        The decoded JSON (see the module docstring).
    folder : str
        Folder relative paths are resolved against (the configuration file's).

    Returns
    -------
    dict
        ``model`` (absolute path), ``cells`` (list of unresolved cells, in order),
        ``calibration`` (absolute paths or None), ``samples``, ``batch_size``, ``limit``.
    """
    if not isinstance(raw, dict):
        raise RefodeError("the sweep configuration must be a JSON object with `model` and "
                          "`grid`")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise RefodeError(f"configuration: unknown key(s) {', '.join(unknown)}; the keys are "
                          f"{', '.join(TOP_KEYS)}")
    if not isinstance(raw.get("model"), str):
        raise RefodeError('configuration: `model` must be the path of a weight file, e.g. '
                          '"model": "model.h5"')
    grids = raw.get("grid")
    grids = grids if isinstance(grids, list) else [grids]
    cells = []
    for i, grid in enumerate(grids):
        for cell in _grid_cells(grid, f"configuration grid[{i}]" if len(grids) > 1
                                else "configuration grid"):
            if cell not in cells:
                cells.append(cell)
    calibration = raw.get("calibration") or {}
    if not isinstance(calibration, dict):
        raise RefodeError('configuration: `calibration` must be an object, e.g. '
                          '{"data": ["train.npz"], "samples": 512}')
    unknown = sorted(set(calibration) - {"data", "samples"})
    if unknown:
        raise RefodeError(f"configuration calibration: unknown key(s) {', '.join(unknown)}")
    limit = raw.get("limit")
    return {
        "model": os.path.abspath(os.path.join(folder, raw["model"])),
        "cells": cells,
        "calibration": (_paths(calibration["data"], "configuration calibration.data", folder)
                        if "data" in calibration else None),
        "samples": _positive_int(calibration.get("samples", CALIBRATION_SAMPLES),
                                 "configuration calibration.samples"),
        "batch_size": _positive_int(raw.get("batch_size", BATCH_SIZE),
                                    "configuration batch_size"),
        "limit": None if limit is None else _positive_int(limit, "configuration limit"),
    }


def load_config(path):
    """:func:`parse_config` of the JSON file ``path`` (relative paths from its folder)."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except json.JSONDecodeError as exc:
        raise RefodeError(f"{path}: not valid JSON ({exc})") from None
    return parse_config(raw, os.path.dirname(os.path.abspath(path)))
