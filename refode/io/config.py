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
from . import layout
from ._h5 import fail
from .weights import FORMAT_VERSION, MAX_N_BASIS, MAX_N_STEPS, MAX_SCALARS, MAX_STAGES


def _typed(cfg, key, kind, path):
    value = cfg[key]
    accepted = (int, float) if kind is float else kind
    ok = isinstance(value, accepted) and not (kind in (int, float) and isinstance(value, bool))
    if not ok:
        fail(path, f"`{key}` must be a JSON {'number' if kind is float else kind.__name__}, "
             f"got {value!r:.60}", "fix the configuration")
    if kind is float and not np.isfinite(value):
        fail(path, f"`{key}` must be finite, got {value!r:.60}", "fix the configuration")
    if kind is int and key != "padding_id" and value < 1:
        fail(path, f"`{key}` must be >= 1, got {value}", "fix the configuration")
    return value


def _check_keys(family, cfg, path, version):
    expected = dict(layout.CONFIG_KEYS[family])
    if version == 1:   # version-1 files predate the architecture options
        for key in layout.VERSION_1_DEFAULTS[family]:
            expected.pop(key)
    missing = sorted(set(expected) - set(cfg))
    extra = sorted(set(cfg) - set(expected))
    if missing:
        fail(path, f"configuration lacks {', '.join(missing)}", "add them (docs/format.md)")
    if extra:
        fail(path, f"unknown configuration keys {', '.join(extra):.80}",
             "remove them (docs/format.md lists the keys)")
    for key, kind in expected.items():
        _typed(cfg, key, kind, path)


def _check_options(family, cfg, path):
    """The architecture options: names of a fixed set (the models' ``FIELDS``), ranges."""
    for key, allowed in layout.CONFIG_CHOICES[family].items():
        if cfg[key] not in allowed:
            fail(path, f"unknown `{key}` {cfg[key]!r:.40}", f"use one of {', '.join(allowed)}")
    if family == layout.TAGGER and not cfg["ln_eps"] > 0:
        fail(path, f"`ln_eps` must be > 0, got {cfg['ln_eps']!r:.40}", "fix the configuration")


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


def check_config(family, text, where, version=FORMAT_VERSION):
    """Parse and validate the JSON configuration of format ``version``; returns the dict.

    A version-1 configuration is returned with the architecture options it means
    (:data:`refode.io.layout.VERSION_1_DEFAULTS`) filled in.
    """
    path = f"{where or '/'}@config"
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        fail(path, f"is not valid JSON ({exc})", "write the configuration with json.dumps")
    if not isinstance(cfg, dict):
        fail(path, f"must be a JSON object, got {type(cfg).__name__}", "write a JSON object")
    _check_keys(family, cfg, path, version)
    if version == 1:
        cfg.update(layout.VERSION_1_DEFAULTS[family])
    _check_options(family, cfg, path)
    _check_lists(family, cfg, path)
    _check_sizes(family, cfg, path)
    _check_discretization(cfg, path)
    return cfg
