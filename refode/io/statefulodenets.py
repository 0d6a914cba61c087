"""Run directories of the original Stateful ODE-Nets code <-> refode models.

The paper's code (github.com/erichson/StatefulOdeNets, JAX/Flax) saves a run as a folder
written by its ``Experiment``: ``model.json`` (the Flax module's attributes),
``optimizer_hyper_params.json`` (with ``extra``: the refinement schedule) and Flax
legacy msgpack checkpoints ``checkpoint_<n>`` (``{'optimizer': {'target': params,
'state': ...}, 'state': {'batch_stats', 'ode_state'}}``, read by
:mod:`refode.io._flax_msgpack`). :func:`from_statefulodenets` reads the latest
checkpoint into a refode model; :func:`to_statefulodenets` writes a model back.

Two model classes are supported:

- ``ContinuousImageClassifier`` (branch ``main``) -> :class:`~refode.models.ContinuousNet`
  with ``widths = hidden * alpha * (1, 2, 4)``, ``head_activation="none"``,
  ``padding="same"``, ``rate_scale=epsilon``, ``stitch_scale=stitch_epsilon``;
- ``ContinuousTransformer`` (branch ``jax_version``) ->
  :class:`~refode.models.ContinuousTagger` with ``rate="paper"``, no attention biases,
  ``ln_eps=1e-6`` (Flax's), ``padding_id=0``; ``qkv_dim`` must equal ``emb_dim``.

Arrays: conv kernels HWIO -> OIHW; dense kernels ``(in, out)`` transposed; attention
kernels query/key/value ``(D, H, D/H)`` and out ``(H, D/H, D)`` -> ``attn_weights``
``(4, D, D)`` in PyTorch's (out, in) order, head ``h`` = features ``h D/H ... (h+1) D/H``;
running statistics from the checkpoint's model state (``batch_stats``, ``ode_state``).
``K`` is the number of stored weight copies (``ode_params`` entries), ``N`` the
original's final step count ``n_step * 2 ** len(refinements)`` (``extra.refine_epochs``
of the classifier, ``extra.refine_steps`` of the tagger), as its own loader computes it.
Bases: ``piecewise_constant``, ``fem_linear`` (``K = 1`` is piecewise constant),
``piecewise_linear`` (DG: node ``2e`` the left, ``2e+1`` the right value of element
``e``, as refode), ``poly_linear``; schemes ``Euler, Midpoint, RK4, RK4_38``.

Where the converted model differs from the original by design
----------------------------------------------------------------
- The original's ``RK4`` and ``RK4_38`` evaluate their last stage at
  ``t0 + dt - 1e-5``; refode uses the exact stage time ``t0 + dt`` with the weights
  from inside the step (the left limit). Same piece, so identical for
  ``piecewise_constant``; for the linear bases the weights there differ by ``1e-5``
  times their slope.
- The original picks pieces by ``int(K * t)`` on float stage times from
  ``numpy.arange(0, 1, 1/N)``, which selects the previous piece for some ``N`` (e.g.
  ``N = K = 7``) and takes ``N + 1`` steps for some others (e.g. 49); refode uses exact
  positions. :func:`from_statefulodenets` warns (``RefodeWarning``) when the original's
  grid differs from refode's for the run's ``K``, scheme and ``N``.
- Classifier: inputs are NCHW (the original's NHWC images ``x.transpose(0, 3, 1, 2)``);
  ``forward`` returns logits (the original returns their ``log_softmax``); the head
  pools globally (the original pools 8x8 windows: the same for 32x32 images).
- Tagger: refode masks ``ids == 0`` (PAD in the original's vocabularies) in attention
  and zeroes their rate; the original ignores padding. Identical on unpadded inputs.
  The original refuses sentences longer than ``max_len``; refode does not.
"""
import json
import os
import shutil
import tempfile
import warnings

import numpy as np

from .._io import _umask, atomic_path
from ..errors import RefodeError, RefodeWarning
from . import _flax_msgpack, layout
from ._statefulodenets_layout import (
    BASES, CHECKPOINT, CLASSIFIER, CLASSIFIER_FIELDS, CONFIG_FIELDS, FLAX_LN_EPS, HYPER_JSON,
    MODEL_JSON, REFINE_KEY, SCHEMES, STATE, TRANSFORMER, WIDTH_FACTORS, classifier_entries,
    tagger_entries, to_original)
from ._statefulodenets_read import as_dtype, checkpoint_path, positive, read_run

__all__ = ["from_statefulodenets", "to_statefulodenets", "checkpoint_path", "input_files"]


def input_files(run_dir):
    """The files of ``run_dir`` that are inputs of a conversion (those present).

    ``model.json``, ``optimizer_hyper_params.json`` and every ``checkpoint_<n>``; an
    empty list when ``run_dir`` is not a readable folder.
    """
    run_dir = os.fspath(run_dir)
    try:
        names = os.listdir(run_dir)
    except OSError:
        return []
    return [os.path.join(run_dir, n) for n in sorted(names)
            if n in (MODEL_JSON, HYPER_JSON) or CHECKPOINT.fullmatch(n)]


def from_statefulodenets(run_dir, dtype="float64", *, step=None):
    """A refode model from a run directory of the original Stateful ODE-Nets code.

    Reads ``model.json``, ``optimizer_hyper_params.json`` and the latest
    ``checkpoint_<n>`` with msgpack and NumPy only (no JAX/Flax); see the module
    docstring for the mapping and for where refode differs from the original by design
    (RK4's last stage at ``t0 + dt - 1e-5`` in the original, the exact stage time in
    refode; exact piece selection; padding masks).

    Parameters
    ----------
    run_dir : str or os.PathLike
        The folder the original's ``Experiment`` wrote.
    dtype : {"float64", "float32"}
        dtype of the model; the checkpoint's (float32) arrays are cast exactly.
    step : int, optional
        Convert ``checkpoint_<step>`` instead of the latest.

    Returns
    -------
    ContinuousNet or ContinuousTagger
        In evaluation mode ``model.forward(x, train=False)`` reproduces the original's
        outputs: for the classifier ``x`` is ``(B, C, H, W)`` (the original's NHWC images
        transposed) and the outputs are logits (the original returns ``log_softmax``);
        for the tagger ``x`` is ``(B, L)`` token ids and the outputs are logits.

    Raises
    ------
    FormatError
        Missing or malformed files, an unknown model class or unsupported option, a
        checkpoint that is truncated, lacks or adds entries, has wrong shapes or
        non-finite values; the message names the file and the path inside it.

    Warns
    -----
    RefodeWarning
        When the original's float stage grid selects other pieces than refode's exact
        one for this ``K``, scheme and ``N`` (the outputs then differ).

    Examples
    --------
    >>> net = refode.io.from_statefulodenets("runs/ContinuousImageClassifier_x")  # doctest: +SKIP
    >>> logits = net.forward(images_nhwc.transpose(0, 3, 1, 2))                   # doctest: +SKIP
    """
    model, source, mismatch = read_run(os.fspath(run_dir), as_dtype(dtype), step)
    if mismatch:
        warnings.warn(f"{source}: {mismatch}; the converted model's outputs differ from the "
                      "original's (refode integrates on the exact grid)", RefodeWarning,
                      stacklevel=2)
    return model


# ----------------------------------------------------------------- export
#: refode tableau -> the original's scheme name.
ORIGINAL_SCHEMES = {v: k for k, v in SCHEMES.items()}
#: placeholder optimizers written into optimizer_hyper_params.json (a refode model
#: carries no optimizer): flax 0.3 type name, hyper-parameters, per-parameter state.
OPTIMIZERS = {
    CLASSIFIER: ("flax.optim.momentum.Momentum",
                 {"learning_rate": 0.1, "beta": 0.9, "weight_decay": 0.0005,
                  "nesterov": False}, ("momentum",)),
    TRANSFORMER: ("flax.optim.adam.Adam",
                  {"learning_rate": 0.05, "beta1": 0.9, "beta2": 0.98, "eps": 1e-09,
                   "weight_decay": 0.1}, ("grad_ema", "grad_sq_ema")),
}
#: mode of a new run folder before the umask is applied (as ``os.mkdir`` uses).
FOLDER_MODE = 0o777
#: ``extra`` of optimizer_hyper_params.json besides the (empty) refinement list.
DECAY_KEY = "learning_rate_decay_epochs"


def _exportable(model):
    """``(original class, model.json fields, heads)``; refuses what the original lacks."""
    from ..models import ContinuousNet

    family, cfg = layout.config_of(model)
    problems = []
    if cfg["scheme"] not in ORIGINAL_SCHEMES:
        problems.append(f"scheme {cfg['scheme']!r} (the original has "
                        f"{', '.join(ORIGINAL_SCHEMES)})")
    if cfg["basis"] not in BASES:
        problems.append(f"basis {cfg['basis']!r} (the original has {', '.join(BASES)})")
    if cfg.get("interval", list(layout.UNIT_INTERVAL)) != list(layout.UNIT_INTERVAL):
        problems.append(f"depth interval {cfg['interval']} (the original integrates [0, 1])")
    common = {"scheme": ORIGINAL_SCHEMES.get(cfg["scheme"]), "n_step": cfg["n_steps"],
              "basis": cfg["basis"], "n_basis": cfg["n_basis"], "training": True}
    if isinstance(model, ContinuousNet):
        w = cfg["widths"][0]
        if cfg["widths"] != [w * m for m in WIDTH_FACTORS]:
            problems.append(f"widths {cfg['widths']} (the original has w, 2w, 4w)")
        for key, want in (("head_activation", "none"), ("padding", "same")):
            if cfg[key] != want:
                problems.append(f"{key}={cfg[key]!r} (the original has {want!r})")
        fields = {"alpha": 1, "hidden": w, "n_classes": cfg["n_classes"], **common,
                  "norm": "BatchNorm-opt-flax", "kernel_init": "kaiming_out",
                  "epsilon": cfg["rate_scale"], "stitch_epsilon": cfg["stitch_scale"]}
        result = CLASSIFIER, {k: fields[k] for k in CLASSIFIER_FIELDS}, 1
    else:
        if cfg["rate"] != "paper" or cfg["attention_bias"]:
            problems.append("rate 'paper' without attention biases is the original's")
        if cfg["ln_eps"] != FLAX_LN_EPS:
            problems.append(f"ln_eps={cfg['ln_eps']!r} (the original's is {FLAX_LN_EPS})")
        result = TRANSFORMER, {"config": None, **common}, cfg["heads"]
    if problems:
        raise RefodeError(f"`model` cannot be written for the original code: "
                          f"{'; '.join(problems)}; rediscretize or rebuild it first")
    return result


def _transformer_config(model, max_len):
    rate = model.rate
    return {"TransformerConfig": {
        **CONFIG_FIELDS, "vocab_size": model.vocab_size, "output_vocab_size": model.n_tags,
        "emb_dim": rate.width, "num_heads": rate.heads, "num_layers": model.n_steps,
        "qkv_dim": rate.width, "mlp_dim": rate.ffn, "max_len": max_len}}


def _insert(root, key, value):
    *parents, leaf = key.split("/")
    node = root
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value


def _checkpoint_tree(model, cls, heads, dtype):
    """The original's checkpoint tree of ``model`` (zero optimizer state, step 0)."""
    entries = classifier_entries() if cls == CLASSIFIER else tagger_entries()
    arrays = {**model.params, **model.state}
    root = {}
    for tree, path, name, kind, slot, per_node in sorted(entries, key=lambda e: e[1]):
        for node in range(model.basis.n) if per_node else (None,):
            value = arrays[name]
            index = tuple(i for i in (node, slot) if i is not None)
            value = np.ascontiguousarray(to_original(kind, value[index], heads), dtype=dtype)
            _insert(root, f"{tree}/{path.format(k=node)}", value)
    root.setdefault(STATE, {})
    target = root["optimizer"]["target"]
    slots = OPTIMIZERS[cls][2]
    zeros = _map_leaves(target, lambda a: {s: np.zeros_like(a) for s in slots})
    root["optimizer"] = {"target": target,
                         "state": {"step": np.zeros((), np.int32), "param_states": zeros}}
    return {"optimizer": root["optimizer"], STATE: root[STATE]}


def _map_leaves(tree, fn):
    return {k: _map_leaves(v, fn) if isinstance(v, dict) else fn(v) for k, v in tree.items()}


def to_statefulodenets(model, run_dir, *, step=0, dtype="float32", max_len=2048):
    """Write ``model`` as a run directory that the original code loads.

    The inverse of :func:`from_statefulodenets`: ``model.json`` (``n_step = N``,
    ``n_basis = K``, no refinements), ``optimizer_hyper_params.json`` (a placeholder
    optimizer: refode models carry none) and ``checkpoint_<step>`` (Flax legacy msgpack,
    the parameters and running statistics, zero optimizer state). The folder is
    written completely or not at all.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
        A model the original can express: ContinuousNet with widths ``(w, 2w, 4w)``,
        ``head_activation="none"``, ``padding="same"``; a paper-rate tagger without
        attention biases and ``ln_eps=1e-6`` on ``[0, 1]``; scheme euler, midpoint, rk4
        or rk4_38 and a basis the original has (see the module docstring).
    run_dir : str or os.PathLike
        A folder that does not exist yet (or is empty).
    step : int
        The checkpoint's number.
    dtype : {"float32", "float64"}
        dtype of the written arrays (the original computes in float32).
    max_len : int
        Tagger only: the original's ``TransformerConfig.max_len`` (longest sentence).

    Raises
    ------
    RefodeError
        A model the original cannot express, a non-empty ``run_dir``.
    """
    cls, fields, heads = _exportable(model)
    dtype = as_dtype(dtype)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise RefodeError(f"`step` must be an integer >= 0, got {step!r:.40}")
    run_dir = os.fspath(run_dir)
    if os.path.exists(run_dir) and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
        raise RefodeError(f"`run_dir` {run_dir} exists and is not an empty folder; "
                          "choose a new folder")
    if cls == TRANSFORMER:
        fields["config"] = _transformer_config(model, positive("max_len", max_len))
    name, hyper, _ = OPTIMIZERS[cls]
    files = {MODEL_JSON: json.dumps({cls: fields}, indent=4).encode(),
             HYPER_JSON: json.dumps({name: hyper, "seed": 0, "extra": {
                 DECAY_KEY: [] if cls == TRANSFORMER else None, REFINE_KEY[cls]: []}},
                 indent=4).encode(),
             f"checkpoint_{step}": _flax_msgpack.encode(
                 _checkpoint_tree(model, cls, heads, dtype))}
    _write_folder(run_dir, files)


def _write_folder(path, files):
    """Create folder ``path`` holding ``files`` (name -> bytes) atomically."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        os.chmod(tmp, FOLDER_MODE & ~_umask())
        for name, raw in files.items():
            with atomic_path(os.path.join(tmp, name)) as part, open(part, "wb") as fh:
                fh.write(raw)
        os.replace(tmp, path)   # onto a missing or empty folder: atomic
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

