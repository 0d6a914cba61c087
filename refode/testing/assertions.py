"""Assertions that compare another implementation's arrays with refode's golden vectors.

The verdict of every array is that of ``refode check`` (:func:`refode.io.golden.compare`):
``|candidate - golden| <= atol + rtol * |golden|`` elementwise, shapes equal, candidate
finite. On failure the :class:`AssertionError` carries a table (one row per array) with the
max absolute error, the max relative error, the worst element's index and the golden and
candidate values there, so that a failing CI log says *which* array is wrong and *where*.
"""
import os
import tempfile

import h5py
import numpy as np

from ..io import golden as _golden
from ..io.read import open_h5

#: relative errors are ``|c - g| / max(|g|, TINY)`` (as ``refode check`` prints them).
TINY = np.finfo(np.float64).tiny
#: width of the array-name column of the table.
NAME_WIDTH = 44


def flatten(result, prefix=""):
    """``{"outputs/logits": array, ...}`` from a flat or nested mapping of arrays.

    Parameters
    ----------
    result : mapping
        Either flat (``{"outputs/logits": a, "gradients/params/stem_conv.weight": g}``) or
        nested (``{"outputs": {"logits": a}, "gradients": {"params": {...}}}``); a leading
        ``"/"`` is ignored. Parameter names keep their dots.
    prefix : str
        Internal (the path of the nested mapping).

    Returns
    -------
    dict of str to numpy.ndarray
    """
    out = {}
    for key, value in result.items():
        name = f"{prefix}{str(key).strip('/')}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        else:
            out[name] = _as_numpy(value)
    return out


def _as_numpy(value):
    """An array from a NumPy array, a scalar, or a tensor with ``detach``/``numpy``."""
    if hasattr(value, "detach"):  # torch tensors, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _worst(ref, cand, rtol, atol):
    """Index of the element furthest outside the tolerance, and the values there."""
    ref64, cand64 = (np.asarray(a, dtype=np.float64) for a in (ref, cand))
    if ref64.size == 0:
        return None, np.nan, np.nan
    excess = np.abs(cand64 - ref64) / (atol + rtol * np.abs(ref64) + TINY)
    flat = int(np.nanargmax(np.where(np.isfinite(cand64), excess, np.inf)))
    index = np.unravel_index(flat, ref64.shape) if ref64.ndim else ()
    return tuple(int(i) for i in index), float(ref64.flat[flat]), float(cand64.flat[flat])


#: table order of the groups of a golden file (then the running statistics).
GROUP_ORDER = {"outputs": 0, "state": 1, "gradients": 2}


def _order(name):
    """Outputs, running statistics, the input gradient, then parameters (each by name)."""
    parts = name.split("/")
    group = "state" if parts[:2] == ["outputs", "state"] else parts[0]
    return (GROUP_ORDER.get(group, len(GROUP_ORDER)), parts[1:2] != ["inputs"], name)


def _row(name, ref, cand, rtol, atol):
    """One row: :func:`refode.io.golden.compare_row` plus the worst element."""
    verdict = _golden.compare_row(name, ref, cand, rtol, atol)
    row = {k: verdict[k] for k in ("array", "shape", "max_abs", "max_rel")}
    row.update(worst_index=None, golden=np.nan, candidate=np.nan)
    if verdict["note"] in ("", "non-finite"):   # comparable: same shape, numeric
        ref64, cand64 = (np.asarray(a, dtype=np.float64) for a in (ref, cand))
        row["worst_index"], row["golden"], row["candidate"] = _worst(ref64, cand64, rtol, atol)
    row.update(passed=verdict["passed"], note=verdict["note"])
    return row


def compare_arrays(expected, candidate, rtol, atol):
    """Rows of the comparison of two mappings of arrays (the golden verdict per array).

    Parameters
    ----------
    expected : dict of str to array
        The reference arrays (names as in a golden file, e.g. ``"outputs/logits"``).
    candidate : dict of str to array
        The arrays to check; names missing here fail, extra names are reported as ignored.
    rtol, atol : float
        ``|candidate - expected| <= atol + rtol * |expected|`` elementwise.

    Returns
    -------
    list of dict
        One row per expected array: ``array, shape, max_abs, max_rel, worst_index,
        golden, candidate, passed, note``.
    """
    rows = []
    for name in sorted(expected, key=_order):
        ref, cand = expected[name], candidate.get(name)
        row = _row(name, ref, cand, rtol, atol)
        rows.append(row)
    return rows


def _fmt(value):
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.3e}"


def format_table(rows, rtol, atol, title="", ignored=()):
    """The comparison rows as a fixed-width text table (what the assertions print).

    Parameters
    ----------
    rows : list of dict
        From :func:`compare_arrays` or :func:`compare_with_golden`.
    rtol, atol : float
    title : str
        First line (e.g. which files were compared).
    ignored : sequence of str
        Candidate names that match no golden array (listed under the table).

    Returns
    -------
    str
    """
    failed = sum(not r["passed"] for r in rows)
    head = (f"{title}{': ' if title else ''}{failed} of {len(rows)} arrays FAIL"
            if failed else f"{title}{': ' if title else ''}all {len(rows)} arrays pass")
    lines = [f"{head} (pass: |c - g| <= atol + rtol |g|, rtol {rtol:g}, atol {atol:g})",
             f"{'array':<{NAME_WIDTH}} {'shape':<16} {'max_abs':>10} {'max_rel':>10} "
             f"{'worst index':<16} {'golden':>11} {'candidate':>11}  verdict"]
    for r in rows:
        index = "-" if r.get("worst_index") is None else str(r["worst_index"])
        verdict = "pass" if r["passed"] else "FAIL" + (f" ({r['note']})" if r["note"] else "")
        lines.append(
            f"{r['array']:<{NAME_WIDTH}} {str(r['shape']):<16} {_fmt(r['max_abs']):>10} "
            f"{_fmt(r['max_rel']):>10} {index:<16} {_fmt(r.get('golden')):>11} "
            f"{_fmt(r.get('candidate')):>11}  {verdict}")
    if ignored:
        lines.append("ignored (no such golden array; check the names in docs/format.md "
                     f"section 3): {', '.join(sorted(ignored))}")
    return "\n".join(lines)


def _write_candidate(path, arrays):
    with h5py.File(path, "w") as fh:
        for name, value in arrays.items():
            fh.create_dataset(name, data=value)


def compare_with_golden(golden_path, candidate, rtol=None, atol=None):
    """Compare a candidate with a golden file, as ``refode check`` does.

    Parameters
    ----------
    golden_path : str or os.PathLike
        A golden file (``refode golden``, :func:`refode.testing.write_golden`).
    candidate : str, os.PathLike or mapping
        A candidate HDF5 file (``/outputs/...``, ``/gradients/...``) or a mapping of arrays
        (flat or nested, see :func:`flatten`; tensors with ``.detach()`` are accepted).
        Names other than ``outputs/...`` and ``gradients/...`` are not part of a golden
        file and are left out here.
    rtol, atol : float, optional
        Override the golden file's tolerances.

    Returns
    -------
    rows : list of dict
        As :func:`compare_arrays`; the verdicts are those of :func:`refode.io.golden.compare`.
    rtol, atol : float
        The tolerances used.
    ignored : list of str
        Candidate names under ``outputs``/``gradients`` that match no golden array.
    """
    with open_h5(golden_path) as fh:
        _, _, reference = _golden.read_golden(fh)
    if isinstance(candidate, (str, os.PathLike)):
        with open_h5(candidate) as fh:
            cand = _golden.read_candidate(fh)
        verdict_rows, rtol, atol = _golden.compare(golden_path, candidate, rtol, atol)
    else:
        cand = {k: v for k, v in flatten(candidate).items()
                if k.split("/")[0] in _golden.COMPARED}
        with tempfile.TemporaryDirectory(prefix="refode-candidate-") as tmp:
            path = os.path.join(tmp, "candidate.h5")
            _write_candidate(path, cand)
            verdict_rows, rtol, atol = _golden.compare(golden_path, path, rtol, atol)
    rows = compare_arrays(reference, cand, rtol, atol)
    verdict = {r["array"]: r["passed"] for r in verdict_rows}
    for row in rows:  # the verdict is refode check's, whatever this module computes
        row["passed"] = verdict[row["array"]]
    ignored = sorted(set(cand) - set(reference))
    return rows, rtol, atol, ignored


def assert_close_to_golden(golden_path, candidate, rtol=None, atol=None):
    """Assert that a candidate matches a golden file within its tolerances.

    Parameters
    ----------
    golden_path : str or os.PathLike
        The golden file.
    candidate : str, os.PathLike or mapping
        A candidate HDF5 file or a mapping ``name -> array`` (``"outputs/logits"``,
        ``"outputs/loss"``, ``"gradients/params/<name>"``, ``"gradients/inputs/x"`` or
        ``"gradients/inputs/embedded"``; nested mappings are accepted, see :func:`flatten`).
    rtol, atol : float, optional
        Override the tolerances stored in the golden file.

    Returns
    -------
    list of dict
        The rows of the comparison (every array passed).

    Raises
    ------
    AssertionError
        Some array is missing, has another shape, is not finite or is out of tolerance;
        the message is the table of :func:`format_table`.
    refode.errors.FormatError
        The golden file (or candidate file) is malformed.
    """
    __tracebackhide__ = True  # pytest: show the table, not this function's source
    rows, rtol, atol, ignored = compare_with_golden(golden_path, candidate, rtol, atol)
    if not all(r["passed"] for r in rows):
        title = f"{os.fspath(golden_path)} vs " + (
            os.fspath(candidate) if isinstance(candidate, (str, os.PathLike)) else "candidate")
        raise AssertionError("\n" + format_table(rows, rtol, atol, title, ignored))
    return rows


def assert_arrays_close(expected, candidate, rtol, atol, title="arrays"):
    """Assert that every expected array is matched by the candidate (same table on failure).

    Parameters
    ----------
    expected, candidate : mapping of str to array
        E.g. refode's running statistics after a training step and another
        implementation's (``"outputs/state/<name>"``).
    rtol, atol : float
    title : str
        First words of the failure message.

    Returns
    -------
    list of dict
        The rows (every array passed).

    Raises
    ------
    AssertionError
        With the table of :func:`format_table`.
    """
    __tracebackhide__ = True
    expected, candidate = flatten(expected), flatten(candidate)
    rows = compare_arrays(expected, candidate, rtol, atol)
    if not all(r["passed"] for r in rows):
        ignored = sorted(set(candidate) - set(expected))
        raise AssertionError("\n" + format_table(rows, rtol, atol, title, ignored))
    return rows
