"""Text summaries of weight and golden files (``refode info``) and compression errors."""
import json
import warnings

import numpy as np
import scipy.sparse

from ..projection import mass
from . import layout
from ..errors import RefodeWarning
from .golden import MODEL, read_golden
from .reference import STATE
from .variances import describe_nonpositive, nonpositive_stages
from ._h5 import int_attr, str_attr
from .read import GOLDEN_FORMAT, open_h5, read_header, read_model


def depth_dependent(model):
    """``{block: {name: array}}`` of every ODE-block's parameters."""
    family, cfg = layout.config_of(model)
    _, _, all_blocks = layout.shapes(family, cfg)
    out = {b: {} for b in all_blocks}
    for name, arr in model.params.items():
        block = layout.block_of(name, all_blocks)
        if block is not None:
            out[block][name] = arr
    return out


def counts(model):
    """``(total, depth-dependent)`` trainable scalars."""
    total = model.num_parameters()
    dep = sum(a.size for arrays in depth_dependent(model).values() for a in arrays.values())
    return total, int(dep)


def describe(path):
    """Lines describing a weight or golden file (validates it fully first).

    Text attributes are printed as text; running variances ``<= -eps`` at a stage
    (:mod:`refode.io.variances`) are listed as a ``warning:`` line instead of being
    warned about.
    """
    with open_h5(path) as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore", RefodeWarning)   # reported below, as a line
        kind = str_attr(fh, "format", "")
        lines = []
        if kind == GOLDEN_FORMAT:
            tol, model, arrays = read_golden(fh)
            attrs = {k: str_attr(fh, k, "") for k in ("mode", "scheme")}
            attrs["n_steps"] = int_attr(fh, "n_steps", "")
            n_state = sum(name.startswith(f"{STATE}/") for name in arrays)
            lines.append(f"golden file: mode {attrs['mode']}, scheme {attrs['scheme']}, "
                         f"N {attrs['n_steps']}, rtol {tol['rtol']:g}, atol {tol['atol']:g}, "
                         f"{len(arrays)} compared arrays"
                         + (f" ({n_state} running statistics after the step)"
                            if n_state else ""))
            group, where = fh[MODEL], "/model"
        else:
            group, where = fh, ""
            model = read_model(fh)
        family, cfg, dtype = read_header(group, where)
        version = str_attr(group, "refode_version", where)
        fmt = int_attr(group, "format_version", where)
    lines += _model_lines(model, family, cfg, dtype, f"{version}, format version {fmt}")
    found = nonpositive_stages(model)
    if found:
        lines.append(f"warning: {describe_nonpositive(found, where.lstrip('/'))}")
    return lines


#: the architecture options :func:`describe` lists (format version 2; filled in for 1).
OPTIONS = {layout.CONTINUOUS_NET: ("head_activation", "padding", "rate_scale", "stitch_scale"),
           layout.TAGGER: ("rate", "attention_bias", "ln_eps", "padding_id")}


def _model_lines(model, family, cfg, dtype, version):
    total, dep = counts(model)
    k = cfg["n_basis"]
    options = "  ".join(f"{key} {cfg[key]!s}" for key in OPTIONS[family])
    lines = [f"model: {family}  dtype: {dtype}  written by refode {version}",
             f"architecture: {options}",
             f"config: {json.dumps(cfg, sort_keys=True)}",
             f"parameters: {total:,} = {total - dep:,} depth-independent + "
             f"{dep:,} depth-dependent ({dep // k:,} per basis function x K = {k})",
             f"state: {sum(a.size for a in model.state.values()):,} scalars in "
             f"{len(model.state)} arrays",
             "ODE-blocks:"]
    for block, arrays in depth_dependent(model).items():
        n = sum(a.size for a in arrays.values())
        lines.append(f"  {block}: basis {model.basis.family}  K {k}  interval "
                     f"[{model.basis.t0:g}, {model.basis.t1:g}]  scheme {model.scheme}  "
                     f"N {model.n_steps}  parameters {n:,}")
    return lines


#: a mass matrix with at most this fraction of non-zeros is applied in CSR form.
SPARSE_DENSITY = 0.1


def _sparse_if_sparse(matrix):
    """``matrix`` as a CSR matrix when mostly zero (piecewise bases: banded), so that
    applying a ``K = 4096`` mass matrix costs ``O(K)`` per column, not ``O(K^2)``."""
    if np.count_nonzero(matrix) <= SPARSE_DENSITY * matrix.size:
        return scipy.sparse.csr_array(matrix)
    return matrix


def relative_l2_error(arrays_a, basis_a, arrays_b, basis_b):
    """``||theta_B - theta_A||_L2 / ||theta_A||_L2`` over a block's arrays (mass matrices).

    Computed as ``sqrt(b'M_BB b - 2 b'M_BA a + a'M_AA a)`` in float64, so values below
    about ``1e-8`` are round-off.
    """
    m_aa, m_bb, m_ba = (_sparse_if_sparse(m) for m in (mass(basis_a), mass(basis_b),
                                                         mass(basis_b, basis_a)))
    norm_a = norm_b = cross = 0.0
    for name, a in arrays_a.items():
        a2 = np.asarray(a, np.float64).reshape(a.shape[0], -1)
        b = arrays_b[name]
        b2 = np.asarray(b, np.float64).reshape(b.shape[0], -1)
        norm_a += float(np.sum(a2 * (m_aa @ a2)))
        norm_b += float(np.sum(b2 * (m_bb @ b2)))
        cross += float(np.sum(b2 * (m_ba @ a2)))
    err2 = max(norm_b - 2.0 * cross + norm_a, 0.0)
    return float(np.sqrt(err2 / norm_a)) if norm_a > 0 else float(np.sqrt(err2))
