"""Reading a run directory of the original Stateful ODE-Nets code (see
:mod:`refode.io.statefulodenets`): ``model.json``, ``optimizer_hyper_params.json``
and a ``checkpoint_<n>``, each checked, into a refode configuration and arrays.

Every problem raises :class:`refode.errors.FormatError` ``"<file>: [<tree path>:]
<problem>; <fix>"``.
"""
import json
import math
import os

import numpy as np

from ..errors import FormatError, RefodeError
from . import _flax_msgpack, layout
from ._statefulodenets_layout import (
    BASES, CHECKPOINT, CLASSIFIER, CLASSIFIER_FIELDS, CONFIG_FIELDS, FLAX_LN_EPS, HYPER_JSON,
    MODEL_JSON, NORMS, PADDING_ID, REFINE_KEY, SCHEMES, STATE, TARGET, TRANSFORMER,
    TRANSFORMER_FIELDS, WIDTH_FACTORS, classifier_entries, grid_mismatch, original_shape,
    tagger_entries, to_refode)
from .read import build
from .weights import MAX_N_BASIS, MAX_N_STEPS


def _fail(source, problem, fix):
    raise FormatError(f"{source}: {problem}; {fix}")


# ----------------------------------------------------------------- run directory
def _read_json(run_dir, name):
    path = os.path.join(run_dir, name)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        _fail(path, "file missing", "pass the run directory the original's Experiment "
              f"wrote (it holds {MODEL_JSON}, {HYPER_JSON} and checkpoint_<n>)")
    except (OSError, ValueError, RecursionError) as exc:
        _fail(path, f"is not readable JSON ({' '.join(str(exc).split())})",
              "restore the file from the original run")
    if not isinstance(data, dict):
        _fail(path, f"holds a JSON {type(data).__name__}, not an object",
              "restore the file from the original run")
    return path, data


def checkpoint_path(run_dir, step=None):
    """Path of checkpoint ``step`` of ``run_dir`` (default: the latest ``checkpoint_<n>``)."""
    if not os.path.isdir(run_dir):
        _fail(run_dir, "is not a directory", "pass the run directory of the original code")
    found = {int(m.group(1)): name for name in os.listdir(run_dir)
             if (m := CHECKPOINT.fullmatch(name))}
    if not found:
        _fail(run_dir, "holds no checkpoint_<n> file",
              "pass a run directory in which the original saved a checkpoint")
    if step is None:
        step = max(found)
    elif step not in found:
        _fail(run_dir, f"has no checkpoint_{step}",
              f"use one of the steps {', '.join(map(str, sorted(found)))}")
    return os.path.join(run_dir, found[step])


def _model_spec(run_dir):
    """``(json path, class name, fields with defaults)`` of model.json."""
    path, data = _read_json(run_dir, MODEL_JSON)
    if len(data) != 1:
        _fail(path, f"must hold one model class, has {len(data)} keys",
              "restore the file from the original run")
    (name, fields), = data.items()
    known = {CLASSIFIER: CLASSIFIER_FIELDS, TRANSFORMER: TRANSFORMER_FIELDS}
    if name not in known:
        _fail(path, f"unknown model class {name!r:.60}",
              f"refode converts {CLASSIFIER} and {TRANSFORMER}")
    return path, name, _fields(path, name, fields, known[name])


def _fields(path, name, fields, defaults):
    if not isinstance(fields, dict):
        _fail(path, f"`{name}` must be a JSON object", "restore the file from the original run")
    extra = sorted(set(fields) - set(defaults))
    if extra:
        _fail(path, f"unknown attribute `{name}.{extra[0]:.40}`",
              "the run is from a code version refode does not know")
    out = {**defaults, **fields}
    missing = [k for k, v in out.items() if v is None]
    if missing:
        _fail(path, f"`{name}` lacks `{missing[0]}`", "restore the file from the original run")
    return out


def _integer(path, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(path, f"`{name}` must be an integer >= 1, got {value!r:.40}",
              "restore the file from the original run")
    return value


def _number(path, name, value):
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value)):
        _fail(path, f"`{name}` must be a finite number, got {value!r:.40}",
              "restore the file from the original run")
    return float(value)


def _choice(path, name, value, allowed):
    if value not in allowed:
        _fail(path, f"unsupported `{name}` {value!r:.40}", f"refode converts {', '.join(allowed)}")
    return value


def _n_steps(run_dir, cls, n_step, model_json):
    """``n_step * 2 ** len(extra[refinements])`` (the original's final step count)."""
    path, data = _read_json(run_dir, HYPER_JSON)
    key = REFINE_KEY[cls]
    extra = data.get("extra")
    if not isinstance(extra, dict) or key not in extra:
        _fail(path, f"lacks `extra.{key}` (the refinement schedule)",
              f"add \"extra\": {{\"{key}\": [...]}} listing the run's refinements")
    refine = [] if extra[key] is None else extra[key]
    if not isinstance(refine, list):
        _fail(path, f"`extra.{key}` must be a list, got {refine!r:.40}",
              "restore the file from the original run")
    n = _integer(model_json, "n_step", n_step)
    if len(refine) > math.log2(MAX_N_STEPS) or n * 2 ** len(refine) > MAX_N_STEPS:
        _fail(path, f"n_step {n} refined {len(refine)} times exceeds refode's cap of "
              f"{MAX_N_STEPS} steps", "the file is damaged or the run too deep for refode")
    return n * 2 ** len(refine)


# ----------------------------------------------------------------- checkpoint
def _read_checkpoint(path):
    """``(flat leaves of optimizer/target and state, target tree)`` of a checkpoint."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        _fail(path, f"cannot be read ({' '.join(str(exc).split())})", "check the path")
    tree = _flax_msgpack.decode(raw, path)
    optimizer = tree.get("optimizer")
    target = optimizer.get("target") if isinstance(optimizer, dict) else None
    state = tree.get(STATE, {})
    if not isinstance(target, dict) or not isinstance(state, dict):
        _fail(path, f"lacks the trees {TARGET} (parameters) and {STATE} (model state)",
              "pass a checkpoint saved by the original's Experiment.save_checkpoint")
    flat = _flax_msgpack.flatten(target, TARGET)
    flat.update(_flax_msgpack.flatten(state, STATE))
    return flat, target


def _leaf(source, flat, key, shape=None):
    """The float array at ``key``, checked for shape (when given) and finiteness."""
    if key not in flat:
        _fail(source, f"{key}: entry missing",
              "the checkpoint does not match model.json: pass the run's own files")
    a = flat[key]
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        _fail(source, f"{key}: must be a float array, got {getattr(a, 'dtype', type(a))}",
              "the checkpoint does not match model.json: pass the run's own files")
    if shape is not None and a.shape != tuple(shape):
        _fail(source, f"{key}: shape {list(a.shape)}, expected {list(shape)} from model.json",
              "the checkpoint does not match model.json: pass the run's own files")
    if not np.isfinite(a).all():
        _fail(source, f"{key}: {a.size - np.count_nonzero(np.isfinite(a))} non-finite "
              "value(s)", "convert a checkpoint from before the training diverged")
    return a


def _n_nodes(source, target, block, key="ode_params"):
    """Number of weight copies ``K`` of ``block`` (its list is a map '0' .. 'K-1')."""
    nodes = target.get(block, {}).get(key) if isinstance(target.get(block), dict) else None
    where = f"{TARGET}/{block}/{key}"
    if not isinstance(nodes, dict) or not nodes:
        _fail(source, f"{where}: entry missing or empty",
              "the checkpoint does not match model.json: pass the run's own files")
    if set(nodes) != {str(i) for i in range(len(nodes))}:
        _fail(source, f"{where}: node keys {sorted(nodes)!s:.60} are not 0 .. K-1",
              "the checkpoint is damaged: restore it from the original run")
    if len(nodes) > MAX_N_BASIS:
        _fail(source, f"{where}: {len(nodes)} nodes exceed refode's cap of {MAX_N_BASIS}",
              "the file is damaged or the model too large for refode")
    return len(nodes)


def _basis(model_json, source, name, k):
    """refode's family for the original's ``basis`` with ``k`` nodes."""
    from ..bases import basis as make_basis

    _choice(model_json, "basis", name, BASES)
    family = "piecewise_constant" if name == "fem_linear" and k == 1 else name
    try:
        make_basis(family, k)
    except RefodeError as exc:
        _fail(source, f"{k} weight copies do not form a {name} basis "
              f"({' '.join(str(exc).split())})", "pass the run's own checkpoint")
    return family


def _gather(source, flat, entries, cfg, family, k, heads, dtype):
    """refode ``params, state`` of ``cfg`` filled from the original's leaves."""
    params, state, _ = layout.shapes(family, cfg)
    out = {TARGET: {}, STATE: {}}
    used = set()
    for tree, path, name, kind, slot, per_node in entries:
        want = (params if tree == TARGET else state)[name]
        inner = want[1:] if per_node else want
        inner = inner if slot is None else inner[1:]
        shape = original_shape(kind, inner, heads)
        arr = out[tree].setdefault(name, np.empty(want, dtype))
        for node in range(k) if per_node else (None,):
            key = f"{tree}/{path.format(k=node)}"
            used.add(key)
            index = tuple(i for i in (node, slot) if i is not None)
            arr[index] = to_refode(kind, _leaf(source, flat, key, shape))
    for key in sorted(set(flat) - used):
        _fail(source, f"{key}: unexpected entry",
              "the checkpoint holds arrays this model class does not have: pass the run's "
              "own files")
    if set(out[TARGET]) != set(params) or set(out[STATE]) != set(state):
        raise RuntimeError("internal: the name map does not cover refode's layout")
    return out[TARGET], out[STATE]


# ----------------------------------------------------------------- the two classes
def _classifier_config(model_json, source, f, flat, target, n_steps):
    width = _integer(model_json, "hidden", f["hidden"]) * _integer(model_json, "alpha",
                                                                   f["alpha"])
    _choice(model_json, "norm", f["norm"], NORMS)
    counts = {_n_nodes(source, target, f"StatefulContinuousBlock_{j}")
              for j in range(len(WIDTH_FACTORS))}
    if len(counts) != 1:
        _fail(source, f"the ODE-blocks hold different numbers of weight copies {sorted(counts)}",
              "refode needs one basis for all blocks: pass the run's own checkpoint")
    k = counts.pop()
    stem = _leaf(source, flat, f"{TARGET}/Conv_0/kernel")
    if stem.ndim != 4:
        _fail(source, f"{TARGET}/Conv_0/kernel: shape {list(stem.shape)}, expected "
              "[3, 3, in_channels, hidden * alpha]", "pass the run's own checkpoint")
    return {"in_channels": int(stem.shape[2]),
            "n_classes": _integer(model_json, "n_classes", f["n_classes"]),
            "widths": [width * m for m in WIDTH_FACTORS],
            "basis": _basis(model_json, source, f["basis"], k), "n_basis": k,
            "scheme": SCHEMES[_choice(model_json, "scheme", f["scheme"], tuple(SCHEMES))],
            "n_steps": n_steps, "head_activation": "none", "padding": "same",
            "rate_scale": _number(model_json, "epsilon", f["epsilon"]),
            "stitch_scale": _number(model_json, "stitch_epsilon", f["stitch_epsilon"])}, 1


def _tagger_config(model_json, source, f, flat, target, n_steps):
    config = f["config"]
    if not (isinstance(config, dict) and list(config) == ["TransformerConfig"]):
        _fail(model_json, "`config` must be {\"TransformerConfig\": {...}}",
              "restore the file from the original run")
    c = _fields(model_json, "TransformerConfig", config["TransformerConfig"], CONFIG_FIELDS)
    width, heads = _integer(model_json, "emb_dim", c["emb_dim"]), _integer(
        model_json, "num_heads", c["num_heads"])
    if _integer(model_json, "qkv_dim", c["qkv_dim"]) != width:
        _fail(model_json, f"qkv_dim {c['qkv_dim']} differs from emb_dim {width}",
              "refode's attention projects D -> D: convert a run with qkv_dim == emb_dim")
    if width % heads:
        _fail(model_json, f"num_heads {heads} does not divide qkv_dim {width}",
              "restore the file from the original run")
    k = _n_nodes(source, target, "ContinuousBlock_0")
    return {"vocab_size": _integer(model_json, "vocab_size", c["vocab_size"]),
            "n_tags": _integer(model_json, "output_vocab_size", c["output_vocab_size"]),
            "width": width, "heads": heads, "ffn": _integer(model_json, "mlp_dim", c["mlp_dim"]),
            "basis": _basis(model_json, source, f["basis"], k), "n_basis": k,
            "interval": list(layout.UNIT_INTERVAL),
            "scheme": SCHEMES[_choice(model_json, "scheme", f["scheme"], tuple(SCHEMES))],
            "n_steps": n_steps, "padding_id": PADDING_ID, "rate": "paper",
            "attention_bias": False, "ln_eps": FLAX_LN_EPS}, heads


#: per class: refode family, configuration reader, name map.
CLASSES = {CLASSIFIER: (layout.CONTINUOUS_NET, _classifier_config, classifier_entries),
           TRANSFORMER: (layout.TAGGER, _tagger_config, tagger_entries)}


def as_dtype(dtype):
    """``dtype`` as float64 or float32 (RefodeError otherwise)."""
    try:
        out = np.dtype(dtype)
    except TypeError:
        out = None
    if out not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise RefodeError(f"`dtype` must be float64 or float32, got {dtype!r:.40}")
    return out


def positive(name, value):
    """An integer argument ``>= 1`` (RefodeError naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RefodeError(f"`{name}` must be an integer >= 1, got {value!r:.40}")
    return value


def read_run(run_dir, dtype, step):
    """``(model, checkpoint path, grid mismatch or None)`` of a run directory."""
    source = checkpoint_path(run_dir, step)
    model_json, cls, fields = _model_spec(run_dir)
    family, read_config, entries = CLASSES[cls]
    n_steps = _n_steps(run_dir, cls, fields["n_step"], model_json)
    flat, target = _read_checkpoint(source)
    cfg, heads = read_config(model_json, source, fields, flat, target, n_steps)
    params, state = _gather(source, flat, entries(), cfg, family, cfg["n_basis"], heads, dtype)
    try:
        model = build(family, cfg, dtype.name, params, state)
    except RefodeError as exc:
        _fail(model_json, " ".join(str(exc).split()), "fix the run's model options")
    return model, source, grid_mismatch(fields["basis"], cfg["n_basis"], fields["scheme"],
                                        n_steps)
