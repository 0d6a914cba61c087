"""The main job: train, compress and re-discretize a stateful ODE-Net on the bundled digits.

Uses scikit-learn's 8x8 digits (1,797 images shipped inside its wheel; no data path
needed), split 1,397 train / 400 test with the seed. The model is a convolutional
:class:`~refode.models.ContinuousNet` (paper, section 5) with stateful batch norm,
trained with SGD momentum and multilevel refinement ``K = N = 1 -> 2 -> 4 -> 8``
(Euler, piecewise-constant weights, momentum reset at each refinement). It is then
compressed without retraining and without data, by exact L2 projection (and, for
comparison, interpolation) onto fewer piecewise-constant pieces, FEM hat functions
and Legendre polynomials, and every variant is evaluated with several schemes and
step counts (graph shortening). The K = 2 compressions are also evaluated with the
other statistics policies (``stats="recalibrate"`` on 256 training images and
``stats="positive"``). All evaluations are the cells of one :func:`refode.sweep.run_sweep`
(a Dask LocalCluster of :data:`SWEEP_WORKERS` single-threaded worker processes).

Writes to ``out``: ``model.h5`` (:func:`refode.save`), ``golden.h5``
(:func:`refode.io.golden.write` on 8 test images), ``checkpoint.h5`` (the last
training checkpoint), ``report.json`` (one row per evaluated configuration),
``accuracy_vs_parameters.png`` and ``accuracy_vs_steps.png``; ``data/test.npz`` and
``data/calibration.npz`` (the sweep's inputs), ``sweep.json`` (its configuration:
``refode sweep out/demo/sweep.json --data out/demo/data/test.npz --out DIR`` reruns it)
and ``sweep/`` (its table ``results.csv``/``results.json``, ``pareto_parameters.png``,
``pareto_time.png`` and ``cells/``).
"""
import contextlib
import json
import os
import shutil
import sys
import time

import numpy as np

from . import _io
from .io import golden, save
from .models import ContinuousNet
from .train import SGD, Trainer

#: channels of the two stages (stitch + ODE-block each).
WIDTHS = (16, 32)
#: classes of the digits data; side of its images.
N_CLASSES, SIDE = 10, 8
#: held-out test images (the other 1,397 of the 1,797 train).
N_TEST = 400
#: epochs at each level of refinement K = N = 1, 2, 4, 8.
EPOCHS_PER_LEVEL = (2, 2, 3, 5)
BATCH = 64
LEARNING_RATE = 0.05
#: the learning rate is multiplied by this for the last FINE_TUNE_EPOCHS epochs.
LR_DECAY, FINE_TUNE_EPOCHS = 0.1, 2
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
#: test images in golden.h5.
GOLDEN_IMAGES = 8
#: step counts at which the trained model is evaluated with every scheme.
STEP_SWEEP = (1, 2, 4, 8, 16)
SCHEMES = ("euler", "midpoint", "rk4")
#: (basis, K, method) of the compressed models.
COMPRESSIONS = (
    [("piecewise_constant", k, m) for m in ("projection", "interpolation") for k in (4, 2, 1)]
    + [("fem_linear", k, m) for m in ("projection", "interpolation") for k in (5, 3)]
    + [("legendre", k, m) for m in ("projection", "interpolation") for k in (4, 2)]
)
#: (scheme, N) at which every compressed model is evaluated (plus Euler with N = K).
COMPRESSED_RUNS = (("euler", 8), ("midpoint", 4), ("rk4", 2))
#: (basis, K, method, stats) of the statistics-policy comparison, evaluated at the same
#: runs as the compressions: projected lines and polynomials with their variances
#: re-estimated on training images or projected positively.
POLICY_COMPRESSIONS = [(f, 2, "projection", s) for f in ("piecewise_constant", "fem_linear",
                                                         "legendre")
                       for s in ("project", "recalibrate", "positive")]
#: training images of ``stats="recalibrate"``.
CALIBRATION_IMAGES = 256
#: worker processes of the sweep (0: one thread in this process, which reuses the kernels
#: the training compiled; every worker process compiles them once, about 15 s).
SWEEP_WORKERS = 2
REPORT_KEYS = ("basis", "n_basis", "method", "stats", "scheme", "n_steps", "accuracy",
               "nonfinite", "n_parameters", "seconds")


def load_digits_split(seed):
    """Digits as ``(n, 1, 8, 8)`` float64 in [0, 1]: ``(x_train, y_train, x_test, y_test)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "the demo needs scikit-learn's bundled digits: pip install 'refode[demo]'"
        ) from exc
    data = load_digits()
    x = (data.data.astype(np.float64) / 16.0).reshape(-1, 1, SIDE, SIDE)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    return x[N_TEST:], y[N_TEST:], x[:N_TEST], y[:N_TEST]


@contextlib.contextmanager
def single_threaded_blas():
    """Run OpenBLAS (and other BLAS pools) on one thread, if threadpoolctl is present.

    The demo's GEMMs are tiny (a 16-channel 8x8 convolution); a threaded OpenBLAS
    spends more time waking and synchronising threads than computing, and on a
    loaded 2-core machine it was 100x slower than one thread. The Numba kernels
    keep their own threads.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _lr_schedule(total_epochs):
    def lr(epoch):
        late = epoch >= total_epochs - FINE_TUNE_EPOCHS
        return LEARNING_RATE * (LR_DECAY if late else 1.0)
    return lr


def train(x, y, x_test, y_test, seed, out, quiet):
    """Train with refinement K = N = 1 -> 2 -> 4 -> 8; return the trained model."""
    model = ContinuousNet(in_channels=1, n_classes=N_CLASSES, widths=WIDTHS,
                          basis="piecewise_constant", n_basis=1, scheme="euler", n_steps=1,
                          seed=seed)
    epochs = int(sum(EPOCHS_PER_LEVEL))
    trainer = Trainer(
        model, SGD(LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY),
        epochs=epochs, batch_size=BATCH, refine_at=np.cumsum(EPOCHS_PER_LEVEL)[:-1],
        seed=seed + 1, lr_schedule=_lr_schedule(epochs),
        checkpoint=os.path.join(out, "checkpoint.h5"), progress=not quiet,
        eval_data=(x_test, y_test))
    return trainer.fit(x, y)


def sweep_config(model_file="model.h5", calibration="data/calibration.npz"):
    """The demo's sweep: the trained model at every scheme and N, then every compression
    (Euler with N = K and :data:`COMPRESSED_RUNS`), then :data:`POLICY_COMPRESSIONS`."""
    grids = [{"scheme": list(SCHEMES), "n_steps": list(STEP_SWEEP)}]
    cells = [(f, k, m, "project") for f, k, m in COMPRESSIONS] + list(POLICY_COMPRESSIONS)
    for family, k, method, stats in cells:
        base = {"basis": [family], "n_basis": [k], "method": [method], "stats": [stats]}
        grids.append({**base, "scheme": ["euler"], "n_steps": ["K"]})
        grids += [{**base, "scheme": [s], "n_steps": [n]} for s, n in COMPRESSED_RUNS]
    return {"model": model_file, "grid": grids,
            "calibration": {"data": calibration, "samples": CALIBRATION_IMAGES}}


def evaluate_all(model, x, y, x_calibration, out, quiet=True):
    """Report rows (keys :data:`REPORT_KEYS`) of the sweep of :func:`sweep_config`.

    Writes ``out/data``, ``out/sweep.json`` and a fresh ``out/sweep``; ``model`` must be
    saved as ``out/model.h5``. The trained model's rows have method ``"trained"``.
    """
    from .sweep import run_sweep, write_inputs

    config, test = write_inputs(out, x, y, x_calibration, sweep_config())
    shutil.rmtree(os.path.join(out, "sweep"), ignore_errors=True)  # a new model: recompute
    result = run_sweep(config, [test], os.path.join(out, "sweep"),
                       n_workers=max(SWEEP_WORKERS, 1), processes=SWEEP_WORKERS > 0,
                       progress=not quiet)
    rows = []
    for r in result.rows:
        if r["status"] != "ok":
            raise RuntimeError(f"sweep cell {r['id']} failed: {r['error']}")
        trained = ((r["basis"], r["n_basis"]) == (model.basis.family, model.basis.n)
                   and r["stats"] == "project")
        rows.append({**{k: r[k] for k in REPORT_KEYS},
                     "method": "trained" if trained else r["method"]})
    return rows


def format_table(report):
    """The report as a fixed-width text table."""
    head = (f"{'basis':<19}{'K':>3}  {'method':<14}{'stats':<12}{'scheme':<9}{'N':>3}  "
            f"{'accuracy':>8}  {'params':>7}  {'ms':>7}")
    lines = [head, "-" * len(head)]
    for r in report:
        lines.append(
            f"{r['basis']:<19}{r['n_basis']:>3}  {r['method']:<14}{r['stats']:<12}"
            f"{r['scheme']:<9}{r['n_steps']:>3}  {100 * r['accuracy']:7.2f}%  "
            f"{r['n_parameters']:>7}  {1e3 * r['seconds']:7.1f}")
    return "\n".join(lines)


def write_plots(report, out):
    """``accuracy_vs_parameters.png`` and ``accuracy_vs_steps.png``; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [os.path.join(out, n) for n in ("accuracy_vs_parameters.png", "accuracy_vs_steps.png")]
    fig, ax = plt.subplots(figsize=(6, 4))
    shallow = [r for r in report if r["scheme"] == "euler" and r["n_steps"] == r["n_basis"]
               and r["stats"] == "project"]
    for key in sorted({(r["basis"], r["method"]) for r in shallow}):
        pts = sorted((r["n_parameters"], 100 * r["accuracy"]) for r in shallow
                     if (r["basis"], r["method"]) == key)
        style = "s--" if key[1] == "interpolation" else "o-"
        ax.plot(*zip(*pts), style, label=f"{key[0]} ({key[1]})")
    ax.set(xlabel="parameters", ylabel="test accuracy (%)", title="Euler, N = K")
    ax.legend(fontsize=7)
    _save_figure(fig, paths[0])
    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme in SCHEMES:
        pts = [(r["n_steps"], 100 * r["accuracy"]) for r in report
               if r["method"] == "trained" and r["scheme"] == scheme]
        ax.plot(*zip(*pts), "o-", label=scheme)
    ax.set_xscale("log", base=2)
    ax.set(xticks=STEP_SWEEP, xticklabels=[str(n) for n in STEP_SWEEP], xlabel="steps N",
           ylabel="test accuracy (%)", title="trained model at other discretizations")
    ax.legend()
    _save_figure(fig, paths[1])
    plt.close("all")
    return paths


def _save_figure(fig, path):
    fig.tight_layout()
    with _io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def run_demo(out="out/demo", seed=0, quiet=False):
    """Train, compress and evaluate; write the files of the module docstring.

    Parameters
    ----------
    out : str or PathLike
        Output folder (created).
    seed : int
        Seed of the split, the initialisation and the shuffling.
    quiet : bool
        Print only the final table (no progress bar, no file list).

    Returns
    -------
    list of dict
        The report rows (keys :data:`REPORT_KEYS`).
    """
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    log = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = load_digits_split(seed)
    with single_threaded_blas():
        model = train(x_train, y_train, x_test, y_test, seed, out, quiet)
        log(f"trained in {time.perf_counter() - start:.1f} s "
            f"({model.num_parameters()} parameters at K = {model.basis.n})")
        save(model, os.path.join(out, "model.h5"))
        golden.write(os.path.join(out, "golden.h5"), model, x_test[:GOLDEN_IMAGES],
                     y_test[:GOLDEN_IMAGES], mode="eval")
        report = evaluate_all(model, x_test, y_test, x_train[:CALIBRATION_IMAGES], out, quiet)
    print(format_table(report))
    _io.write_text(os.path.join(out, "report.json"), json.dumps(report, indent=1) + "\n")
    plots = write_plots(report, out)
    names = ["model.h5", "golden.h5", "checkpoint.h5", "report.json"] + [
        os.path.basename(p) for p in plots] + ["sweep.json", "data/", "sweep/ (results.csv, "
                                               "pareto_parameters.png, pareto_time.png)"]
    log(f"wrote {', '.join(names)} to {out} in {time.perf_counter() - start:.1f} s")
    return report
