"""Validation of the JSON architecture configuration (``/@config``), before allocation.

Keys and types, ranges, the size caps (:data:`~refode.io.weights.MAX_SCALARS`, ...:
computed from the configuration alone, so absurd sizes are refused before anything is
allocated), a valid basis size for the family and a known scheme.
"""
import json

import numpy as np

from ..bases import basis as make_basis
from ..errors import RefodeError
from ..integrate.tableau import tableau
from ..models.transformer import RATES
from . import layout
from ._h5 import fail
from .weights import MAX_N_BASIS, MAX_N_STEPS, MAX_SCALARS, MAX_STAGES


def _typed(cfg, key, kind, path):
    value = cfg[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        fail(path, f"`{key}` must be a JSON {kind.__name__}, got {value!r:.60}",
             "fix the configuration")
    if kind is int and key != "padding_id" and value < 1:
        fail(path, f"`{key}` must be >= 1, got {value}", "fix the configuration")
    return value


def _check_keys(family, cfg, path):
    expected = layout.CONFIG_KEYS[family]
    missing = sorted(set(expected) - set(cfg))
    extra = sorted(set(cfg) - set(expected))
    if missing:
        fail(path, f"configuration lacks {', '.join(missing)}", "add them (docs/format.md)")
    if extra:
        fail(path, f"unknown configuration keys {', '.join(extra):.80}",
             "remove them (docs/format.md lists the keys)")
    for key, kind in expected.items():
        _typed(cfg, key, kind, path)


def _check_lists(family, cfg, path):
    if family == layout.CONTINUOUS_NET:
        widths = cfg["widths"]
        if len(widths) > MAX_STAGES:
            fail(path, f"{len(widths)} widths exceed the cap {MAX_STAGES}",
                 "the file is corrupt or the model is too deep for refode")
        if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                                 for w in widths):
            fail(path, f"`widths` must be a non-empty list of integers >= 1, got "
                 f"{widths!r:.60}", "fix the configuration")
    else:
        iv = cfg["interval"]
        if (len(iv) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    for v in iv)
                or not (np.isfinite(iv).all() and iv[0] < iv[1])):
            fail(path, f"`interval` must be [t0, t1] with finite t0 < t1, got {iv!r:.60}",
                 "fix the configuration")
        if cfg["width"] % cfg["heads"]:
            fail(path, f"`heads` ({cfg['heads']}) must divide `width` ({cfg['width']})",
                 "fix the configuration")
        if cfg["rate"] not in RATES:
            fail(path, f"unknown `rate` {cfg['rate']!r:.40}", f"use one of {', '.join(RATES)}")


def _check_sizes(family, cfg, path):
    if cfg["n_basis"] > MAX_N_BASIS or cfg["n_steps"] > MAX_N_STEPS:
        fail(path, f"n_basis {cfg['n_basis']} / n_steps {cfg['n_steps']} exceed the caps "
             f"{MAX_N_BASIS} / {MAX_N_STEPS}", "use a smaller discretization")
    params, state, _ = layout.shapes(family, cfg)
    total = layout.count(params) + layout.count(state)
    if total > MAX_SCALARS:
        fail(path, f"the configuration needs {total:.3g} scalars, more than the cap "
             f"{MAX_SCALARS:,}", "the file is corrupt or the model is too large for refode")


def _check_discretization(cfg, path):
    try:
        make_basis(cfg["basis"], cfg["n_basis"], tuple(cfg.get("interval",
                                                               layout.UNIT_INTERVAL)))
        tableau(cfg["scheme"])
    except RefodeError as exc:
        fail(path, " ".join(str(exc).split()), "fix basis/n_basis/scheme in the configuration")


def check_config(family, text, where):
    """Parse and validate the JSON configuration; returns the dict."""
    path = f"{where or '/'}@config"
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        fail(path, f"is not valid JSON ({exc})", "write the configuration with json.dumps")
    if not isinstance(cfg, dict):
        fail(path, f"must be a JSON object, got {type(cfg).__name__}", "write a JSON object")
    _check_keys(family, cfg, path)
    _check_lists(family, cfg, path)
    _check_sizes(family, cfg, path)
    _check_discretization(cfg, path)
    return cfg
