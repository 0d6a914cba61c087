"""MNIST validation: train a stateful ContinuousNet to K = N = 16, compress it, re-discretize it.

Usage (the command behind ``docs/results.md``)::

    python validation/mnist.py --data ../shared/data/mnist_test --out out/mnist

``--data`` is a folder holding the MNIST **test** set in IDX format
(``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``, gzip or not); any
copy of the public files works. Only the test set is assumed to be available, so it
is split by position: the first 8,000 images train, the last 2,000 test.

What it does, with the defaults (every number is an option):

1. **Data.** Pixels scaled to ``[0, 1]``; each image average-pooled 2x2 to 14x14
   (``--pool 2``; ``--pool 1`` keeps 28x28 at four times the cost). No augmentation.
2. **Training.** :class:`refode.models.ContinuousNet` with widths (16, 32), stateful
   batch norm, piecewise-constant weights, Euler; multilevel refinement
   ``K = N = 1 -> 2 -> 4 -> 8 -> 16`` (:data:`EPOCHS_PER_LEVEL` epochs at each level,
   exact refinement, momentum reset); SGD momentum 0.9, weight decay 5e-4, batch 64,
   learning rate 0.05, x0.1 for the last two epochs. A checkpoint after every epoch
   (``OUT/checkpoint.h5``; ``--resume`` continues from it bitwise).
3. **Compression table.** The trained K = 16 model mapped onto piecewise-constant,
   FEM (``fem_linear``) and Legendre bases of K = 8, 4, 2 functions by exact L2
   projection and, for comparison, by interpolation; each evaluated with the training
   discretization (Euler, N = 16), and the piecewise-constant projections also with
   Euler N = K (compression and a shorter graph together).
   A compressed running variance can become negative at a stage (projection onto
   lines and polynomials need not keep a positive function positive); that model
   gives NaN logits, which the table marks (column "stages with var <= 0") and
   :func:`refode.train.evaluate` counts as wrong. The projections are therefore also
   evaluated with the other statistics policies of ``rediscretize``: ``recalibrate``
   (running statistics re-estimated on the first :data:`CALIBRATION_IMAGES` training
   images, weights frozen) and ``positive`` (variances projected in the log domain).
4. **Discretization table.** The trained model evaluated with Euler, midpoint and RK4
   at N = 1, 2, 4, 8, 16, 32 steps (no retraining).

Tables 3 and 4 are the cells of one sweep (:func:`refode.sweep.run_sweep`, Dask
LocalCluster of ``--workers`` processes): ``OUT/sweep.json`` is its configuration,
``OUT/data/`` its inputs (the pooled test split and the calibration images) and
``OUT/sweep/`` its table and Pareto plots; an interrupted run resumes there (cells
recorded as failed are kept as failures unless ``--retry-failed`` is given).

Writes ``OUT/model.h5`` (:func:`refode.save`), ``OUT/checkpoint.h5``,
``OUT/report.json`` (rows, training history, command, seed, data checksums, refode
revision) and ``OUT/tables.md`` (the markdown tables of ``docs/results.md``); prints
the tables. Everything is seeded (``--seed``): rerunning the command reproduces the
numbers bitwise on the same machine and library versions (timings aside).
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

if __package__ in (None, ""):  # run as a script: make the package `validation` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from refode import _io, save  # noqa: E402
from refode.demo import single_threaded_blas  # noqa: E402
from refode.io.data import IMAGE_RANK, LABEL_RANK, PIXEL_MAX, read_idx  # noqa: E402
from refode.models import ContinuousNet  # noqa: E402
from refode.sweep import run_sweep, write_inputs  # noqa: E402
from refode.train import SGD, Trainer  # noqa: E402
from validation.provenance import git_revision  # noqa: E402

#: file names of the MNIST test set inside ``--data`` (a plain copy without .gz works too).
IMAGES, LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
#: training images (the first ones) and test images (the last ones) of the split.
N_TRAIN, N_TEST = 8000, 2000
N_CLASSES = 10
#: side of the average-pooling window applied to every image.
POOL = 2
WIDTHS = (16, 32)
#: epochs at K = N = 1, 2, 4, 8, 16 (refinement doubles K and N between levels).
EPOCHS_PER_LEVEL = (2, 2, 2, 3, 3)
BATCH = 64
LEARNING_RATE = 0.05
#: the learning rate is multiplied by LR_DECAY for the last FINE_TUNE_EPOCHS epochs.
LR_DECAY, FINE_TUNE_EPOCHS = 0.1, 2
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
#: basis families and sizes of the compression table.
FAMILIES = ("piecewise_constant", "fem_linear", "legendre")
COMPRESS_TO = (8, 4, 2)
METHODS = ("projection", "interpolation")
#: schemes and step counts of the discretization table.
SCHEMES = ("euler", "midpoint", "rk4")
STEP_COUNTS = (1, 2, 4, 8, 16, 32)
#: statistics policies of the projections in the compression table.
POLICIES = ("project", "recalibrate", "positive")
#: training images the ``recalibrate`` policy re-estimates the statistics on.
CALIBRATION_IMAGES = 1024
#: targets of issue 5.
TARGET_ACCURACY = 0.98


def _ints(text):
    return tuple(int(t) for t in text.split(","))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train, compress and re-discretize a ContinuousNet on the MNIST test set.",
        epilog="example: python validation/mnist.py --data ../shared/data/mnist_test "
               "--out out/mnist")
    p.add_argument("--data", required=True,
                   help=f"folder with {IMAGES}[.gz] and {LABELS}[.gz]")
    p.add_argument("--out", default="out/mnist", help="output folder (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=N_TRAIN)
    p.add_argument("--n-test", type=int, default=N_TEST)
    p.add_argument("--pool", type=int, default=POOL, help="average-pooling window side")
    p.add_argument("--widths", type=_ints, default=WIDTHS)
    p.add_argument("--epochs-per-level", type=_ints, default=EPOCHS_PER_LEVEL,
                   help="epochs at K = N = 1, 2, 4, ... (comma-separated)")
    p.add_argument("--compress-to", type=_ints, default=COMPRESS_TO)
    p.add_argument("--step-counts", type=_ints, default=STEP_COUNTS)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.h5")
    p.add_argument("--workers", type=int, default=2,
                   help="sweep worker processes (0: one thread in this process)")
    p.add_argument("--retry-failed", action="store_true",
                   help="with a sweep folder from an earlier run, recompute its failed cells too")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _find(folder, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"error: {folder}: no {name}.gz or {name}; pass --data the folder of "
                     "the MNIST test set in IDX format")


def _md5(path):
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def load_split(folder, n_train, n_test, pool):
    """``(x_train, y_train, x_test, y_test, checksums)``: images ``(n, 1, S, S)`` in [0, 1].

    The first ``n_train`` images train and the last ``n_test`` test; each image is
    average-pooled over ``pool x pool`` windows (its side must be a multiple of it).
    """
    paths = [_find(folder, IMAGES), _find(folder, LABELS)]
    images, labels = read_idx(paths[0], IMAGE_RANK), read_idx(paths[1], LABEL_RANK)
    n, rows, cols = images.shape
    if len(labels) != n or n_train + n_test > n or rows % pool or cols % pool:
        raise SystemExit(f"error: {folder}: {n} images of {rows}x{cols} and {len(labels)} "
                         f"labels cannot give {n_train} + {n_test} images pooled by {pool}")
    x = images.astype(np.float64) / PIXEL_MAX
    x = x.reshape(n, rows // pool, pool, cols // pool, pool).mean(axis=(2, 4))[:, None]
    y = labels.astype(np.int64)
    checksums = {os.path.basename(p): _md5(p) for p in paths}
    return x[:n_train], y[:n_train], x[n - n_test:], y[n - n_test:], checksums


def train(args, x, y, x_test, y_test):
    """The trained model and the training history (one dict per epoch)."""
    model = ContinuousNet(in_channels=1, n_classes=N_CLASSES, widths=args.widths,
                          basis="piecewise_constant", n_basis=1, scheme="euler", n_steps=1,
                          seed=args.seed)
    epochs = int(sum(args.epochs_per_level))

    def lr(epoch):
        return LEARNING_RATE * (LR_DECAY if epoch >= epochs - FINE_TUNE_EPOCHS else 1.0)

    trainer = Trainer(
        model, SGD(LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY),
        epochs=epochs, batch_size=BATCH, refine_at=np.cumsum(args.epochs_per_level)[:-1],
        seed=args.seed + 1, lr_schedule=lr,
        checkpoint=os.path.join(args.out, "checkpoint.h5"), progress=not args.quiet,
        eval_data=(x_test, y_test))
    model = trainer.fit(x, y, resume=args.resume)
    return model, trainer.history


def sweep_config(args, model):
    """The sweep of tables 3 and 4 (paths relative to OUT)."""
    n = model.n_steps
    grids = [{},  # the trained model
             {"basis": list(FAMILIES), "n_basis": list(args.compress_to),
              "method": list(METHODS)},
             {"basis": list(FAMILIES), "n_basis": list(args.compress_to),
              "method": ["projection"], "stats": list(POLICIES[1:])},
             {"scheme": list(SCHEMES), "n_steps": list(args.step_counts)}]
    shorter = [s for s in args.compress_to if s != n]
    if shorter:  # piecewise-constant projections also with N = K
        grids.insert(3, {"basis": ["piecewise_constant"], "n_basis": shorter, "n_steps": ["K"]})
    return {"model": "model.h5", "grid": grids,
            "calibration": {"data": "data/calibration.npz", "samples": CALIBRATION_IMAGES}}


def evaluate_tables(args, model, x, y, x_calibration, log):
    """Rows of the compression table, then of the discretization table (one sweep)."""
    config, test = write_inputs(args.out, x, y, x_calibration, sweep_config(args, model))
    result = run_sweep(config, [test],
                       os.path.join(args.out, "sweep"), n_workers=max(args.workers, 1),
                       processes=args.workers > 0, progress=not args.quiet,
                       retry_failed=args.retry_failed)
    k, n = model.basis.n, model.n_steps
    compression, discretization = [], []
    for r in result.rows:
        if r["status"] != "ok":
            raise SystemExit(f"error: sweep cell {r['id']} failed: {r['error']}")
        trained = (r["basis"], r["n_basis"], r["stats"]) == (model.basis.family, k, "project")
        row = {"basis": r["basis"], "n_basis": r["n_basis"],
               "method": "trained" if trained else r["method"], "stats": r["stats"],
               "scheme": r["scheme"], "n_steps": r["n_steps"], "accuracy": r["accuracy"],
               "nonfinite": r["nonfinite"], "loss": r["loss"],
               "n_parameters": r["n_parameters"], "depth_parameters": r["depth_parameters"],
               "l2_error": r["l2_error"], "seconds": r["seconds"],
               "nonpositive_variance_stages": r["nonpositive_stages"], "full_k": k}
        if trained and (r["scheme"], r["n_steps"]) != (model.scheme, n):
            discretization.append({**row, "table": "discretization"})
        else:
            compression.append({**row, "table": "compression"})
            if trained:  # the trained discretization is also a cell of table 4
                discretization.append({**row, "table": "discretization"})
    compression.sort(key=lambda r: (r["method"] != "trained", FAMILIES.index(r["basis"])
                                    if r["basis"] in FAMILIES else -1, -r["n_basis"],
                                    r["method"], POLICIES.index(r["stats"]), -r["n_steps"]))
    for r in compression:
        log(f"{r['basis']} K = {r['n_basis']} {r['method']} {r['stats']} N = {r['n_steps']}: "
            f"{100 * r['accuracy']:.2f}%")
    return compression + [r for r in discretization if r["scheme"] in SCHEMES
                          and r["n_steps"] in args.step_counts]


def format_tables(rows, history):
    """Markdown: training history, compression table, discretization table."""
    out = ["| epoch | K = N | train loss | test accuracy | seconds |",
           "|---:|---:|---:|---:|---:|"]
    for h in history:
        out.append(f"| {h['epoch'] + 1} | {h['n_basis']} | {h['loss']:.4f} | "
                   f"{100 * h['accuracy']:.2f}% | {h['seconds']:.0f} |")
    out += ["", "| basis | K | method | statistics | scheme | N | test accuracy | parameters "
            "(depth-dependent) | stages with var <= 0 | inference s |",
            "|---|---:|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["table"] == "compression":
            bad = r["nonpositive_variance_stages"]
            acc = f"{100 * r['accuracy']:.2f}%" + (
                f" ({r['nonfinite']:,} NaN predictions)" if r["nonfinite"] else "")
            out.append(f"| {r['basis']} | {r['n_basis']} | {r['method']} | {r['stats']} | "
                       f"{r['scheme']} | {r['n_steps']} | {acc} | {r['n_parameters']:,} "
                       f"({r['depth_parameters']:,}) | {bad} | {r['seconds']:.1f} |")
    disc = [r for r in rows if r["table"] == "discretization"]
    steps = sorted({r["n_steps"] for r in disc})
    out += ["", "| scheme | " + " | ".join(f"N = {s}" for s in steps) + " |",
            "|---|" + "---:|" * len(steps)]
    for scheme in SCHEMES:
        acc = {r["n_steps"]: r["accuracy"] for r in disc if r["scheme"] == scheme}
        out.append(f"| {scheme} | " + " | ".join(f"{100 * acc[s]:.2f}%" for s in steps) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    """Run the experiment; returns the report dict (also written to OUT/report.json)."""
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    start = time.perf_counter()
    x, y, x_test, y_test, checksums = load_split(args.data, args.n_train, args.n_test,
                                                 args.pool)
    with single_threaded_blas():
        model, history = train(args, x, y, x_test, y_test)
        train_seconds = time.perf_counter() - start
        save(model, os.path.join(args.out, "model.h5"))
        rows = evaluate_tables(args, model, x_test, y_test, x[:CALIBRATION_IMAGES], log)
    tables = format_tables(rows, history)
    commit, dirty = git_revision()
    report = {"command": "python validation/mnist.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "seed": args.seed, "revision": commit, "refode_dirty": dirty, "data_md5": checksums,
              "n_train": len(y), "n_test": len(y_test), "image_side": x.shape[-1],
              "widths": list(args.widths), "epochs_per_level": list(args.epochs_per_level),
              "train_seconds": train_seconds, "total_seconds": time.perf_counter() - start,
              "target_accuracy": TARGET_ACCURACY, "history": history, "rows": rows}
    _io.write_text(os.path.join(args.out, "tables.md"), tables)
    _io.write_text(os.path.join(args.out, "report.json"), json.dumps(report, indent=1) + "\n")
    print(tables)
    full = rows[0]["accuracy"]
    log(f"test accuracy at K = N = {rows[0]['n_basis']}: {100 * full:.2f}% (target "
        f"{100 * TARGET_ACCURACY:.0f}%); {report['total_seconds']:.0f} s in all")
    return report


if __name__ == "__main__":
    main()
