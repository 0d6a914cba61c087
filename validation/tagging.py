"""UPOS tagging of Universal Dependencies English EWT with the ODE-Net tagger: multilevel
training, then compression by projection and graph shortening (paper, section 5).

Run from the repository root (the data stays where it is; nothing is copied)::

    python validation/tagging.py --data ../shared/data/ud_english_ewt --out out/tagging

Data
    ``DIR/*-ud-{train,dev,test}.conllu[.xz]`` read with :func:`refode.io.read_conllu`
    (syntactic words; multiword tokens and empty nodes skipped), 17 UPOS tags
    (:data:`refode.io.UPOS_TAGS`). Train is used for training and the vocabulary,
    dev only for monitoring (the end of every epoch's progress line), test only for
    the tables.
Vocabulary (ids: 0 padding, 1 ``<unk>``, then the signatures, then the words)
    A word gets the id of its exact form if that form occurs at least twice
    (``MIN_COUNT``) in train ("US" and "us" stay apart), else the id of its
    lowercased form if the lowercased form occurs that often ("Running" at the start
    of a sentence backs off to "running"), else the id of its unknown-word
    signature. Signatures are the classic unknown-word classes of statistical taggers
    and parsers: URL or e-mail address, number, punctuation-only, and otherwise the
    capitalisation (all caps / capitalised / lower case / mixed), whether the word
    holds a digit or a hyphen, and an English suffix (-ing, -ed, -ly, -tion, -s, ...),
    e.g. ``<unk:cap:dash>`` or ``<unk:lower:-ing>``. Training words seen once are not
    in the vocabulary, so in training every singleton is replaced by its signature:
    the signature embeddings are trained on the words that look most like the
    unknown words of dev and test. On top, word dropout
    (:class:`~validation.tagging_data.WordDropout`) replaces a training word seen
    ``c`` times by its signature with probability ``1 / (1 + c)`` (1/3 for ``c = 2``,
    1% for ``c = 99``; a new mask for every batch, drawn from a generator seeded by the
    run's seed and the batch, so reruns and resumed runs draw the same): it trains the
    signatures on many more words and keeps rare words from being memorised (dev
    accuracy after 4 epochs at K = 1: 90.7% without, 91.1% with ``alpha = 1``, 90.9%
    with ``alpha = 4``). Signatures seen fewer than ``MIN_COUNT`` times in train map to
    ``<unk>``. The code: :mod:`validation.tagging_data`.
Model and training
    ``ContinuousTagger(rate="paper", width=128, heads=1, ffn=128,
    basis="piecewise_constant", scheme="euler")``, Adam with linear warm-up and
    inverse-square-root decay (:class:`refode.train.Adam`), multilevel refinement
    ``K = N = 1 -> 2 -> 4 -> 8`` (:data:`EPOCHS_PER_LEVEL` epochs at each level; the
    moments are reset at each refinement). Mini-batches group sentences of similar
    length under a budget of :data:`BATCH_TOKENS` padded tokens
    (:func:`refode.train.length_batches`: new members and order every epoch, drawn
    from the run's seeded generator) and are trimmed of their padding columns
    (:func:`refode.train.trim_padding`). Every seed is fixed (``--seed``): a rerun gives
    the same numbers. A checkpoint (``OUT/checkpoint.h5``, rewritten atomically after
    every epoch) and ``OUT/history.json`` let ``--resume`` continue an interrupted
    run to bitwise the same model; the sweep (``OUT/sweep/``) resumes by itself and
    recomputes the cells recorded as failed with ``--retry-failed``.
Tables (test token accuracy)
    1. Compression without retraining or data: the trained model's depth-dependent
       weights moved by exact L2 projection (and, for comparison, by interpolation)
       onto the piecewise-constant, FEM (``fem_linear``, ``K`` nodes, ``K - 1``
       elements) and DG (``piecewise_linear``, ``K / 2`` elements) bases with
       ``K = 1, 2, 4, ...`` coefficients, all evaluated with Euler at ``N = K_full``
       steps. Rows of equal ``K`` have the same number of depth-dependent parameters.
    2. Graph shortening of the trained model: Euler, midpoint and RK4 with
       ``N = 1, 2, 4, ..., K_full`` steps.

Both tables are the cells of one sweep (:func:`refode.sweep.run_sweep`: a Dask
LocalCluster of ``--workers`` processes, ``OUT/sweep.json``, ``OUT/data/test.npz``,
``OUT/sweep/`` with its table and Pareto plots).

Writes ``OUT/report.json`` (rows, training history, command, seed, refode revision),
``OUT/tables.md`` (the markdown tables), ``OUT/model.h5`` (:func:`refode.save`),
``OUT/checkpoint.h5`` and ``OUT/history.json``; prints the tables on standard output and
the progress on standard error.
"""
import argparse
import json
import os
import shlex
import sys
import time

import numpy as np

if __package__ in (None, ""):  # run as a script: make the package `validation` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import refode  # noqa: E402
from refode import _io  # noqa: E402
from refode.io import UPOS_TAGS  # noqa: E402
from refode.models import ContinuousTagger  # noqa: E402
from refode.demo import single_threaded_blas  # noqa: E402
from refode.sweep import cell_id, parse_config, run_sweep  # noqa: E402
from refode.sweep.config import resolve_cell  # noqa: E402
from refode.train import Adam, Trainer, evaluate, length_batches, trim_padding  # noqa: E402
from validation.provenance import git_revision  # noqa: E402
from validation.tagging_data import PAD_ID, WORD_DROPOUT, WordDropout, load  # noqa: E402

# ------------------------------------------------------------------ settings
#: the paper's tagger: width, heads, MLP width, rate, basis, scheme.
WIDTH, HEADS, FFN, RATE = 128, 1, 128, "paper"
BASIS, SCHEME = "piecewise_constant", "euler"
#: epochs at the levels K = N = 1, 2, 4, 8 (refinement doubles K and N). K = 1 epochs are
#: cheap (about 27 s against 115 s at K = 8 on 2 busy cores) and train the embedding; the
#: finer levels overfit: with (4, 3, 2, 2) and no word dropout, dev accuracy went 90.7%
#: (K = 1) -> 90.6% (K = 2) -> 90.0% (K = 4) -> 90.0% (K = 8) while training accuracy
#: rose to 98.6%.
EPOCHS_PER_LEVEL = (4, 2, 1, 1)
#: padded tokens per training batch (about 32 sentences of average length).
BATCH_TOKENS = 512
#: Adam's peak learning rate and its linear warm-up (steps, about one epoch). The
#: embedding starts at N(0, 1) and most of its rows get few updates: on 4,000 sentences
#: and 2 epochs at K = 1, dev accuracy was 70% at 1e-3, 80% at 3e-3, 84% at 6e-3, 87% at
#: 1.5e-2 and 87% at 3e-2.
LEARNING_RATE, WARMUP = 1.5e-2, 400
#: sentences per forward pass of the evaluation (sorted by length first).
EVAL_SENTENCES = 256
#: the bases of the compression table and the change-of-basis methods.
FAMILIES = ("piecewise_constant", "fem_linear", "piecewise_linear")
METHODS = ("projection", "interpolation")
#: schemes of the graph-shortening table.
SCHEMES = ("euler", "midpoint", "rk4")
#: columns of the tables (keys of the report rows) and their headers.
COLUMNS = (("basis", "basis"), ("n_basis", "K"), ("method", "method"), ("scheme", "scheme"),
           ("n_steps", "N"), ("accuracy", "accuracy"),
           ("depth_parameters", "depth-dependent parameters"),
           ("parameters", "total parameters"), ("seconds", "seconds"))

# ------------------------------------------------------------------ training
def _history_path(out):
    return os.path.join(out, "history.json")


def train(data, args):
    """Train with refinement; returns ``(model, history)`` (history of every epoch)."""
    x, y, lengths = data["train"]
    levels = [int(e) for e in args.epochs]
    model = ContinuousTagger(len(data["vocab"]), len(UPOS_TAGS), width=args.width,
                             heads=HEADS, ffn=args.ffn, basis=BASIS, n_basis=1,
                             scheme=SCHEME, n_steps=1, seed=args.seed, rate=RATE,
                             padding_id=PAD_ID)
    previous = []

    def save_history(trainer):
        _io.write_text(_history_path(args.out),
                       json.dumps(previous + trainer.history, indent=1))

    dropout = WordDropout(data["vocab"], args.word_dropout, args.seed + 2)
    trainer = Trainer(model, Adam(args.lr, warmup=args.warmup), epochs=sum(levels),
                      batch_size=1, refine_at=np.cumsum(levels)[:-1], seed=args.seed + 1,
                      checkpoint=os.path.join(args.out, "checkpoint.h5"),
                      progress=not args.quiet, eval_data=data["dev"],
                      collate=dropout if args.word_dropout else trim_padding,
                      eval_collate=trim_padding,
                      batches=length_batches(lengths, args.batch_tokens),
                      on_epoch_end=save_history)
    if args.resume and trainer.resume() and os.path.exists(_history_path(args.out)):
        with open(_history_path(args.out), encoding="utf-8") as fh:
            previous = [h for h in json.load(fh) if h["epoch"] < trainer.epoch]
    model = trainer.fit(x, y)
    return model, previous + trainer.history


# ------------------------------------------------------------------ tables
def _sizes(family, k_full):
    """``K = 1, 2, 4, ..., k_full`` that the family allows (FEM and DG need K >= 2)."""
    sizes = [2 ** j for j in range(int(np.log2(k_full)) + 1)]
    return [k for k in sizes if family == "piecewise_constant" or k >= 2]


def sweep_grids(model):
    """``(compression, steps)``: the grids of tables 1 and 2 (refode.sweep configuration)."""
    k_full = model.basis.n
    compression = [{}]  # the trained model
    for family in FAMILIES:
        sizes = [k for k in reversed(_sizes(family, k_full))
                 if not (family == BASIS and k == k_full)]  # not the trained model itself
        if sizes:
            compression.append({"basis": [family], "n_basis": sizes, "method": list(METHODS),
                                "scheme": ["euler"], "n_steps": [k_full]})
    steps = [{"scheme": list(SCHEMES), "n_steps": _sizes(BASIS, k_full)}]
    return compression, steps


def _ids(grids, model):
    cfg = parse_config({"model": "model.h5", "grid": grids})
    return [cell_id(resolve_cell(c, model)) for c in cfg["cells"]]


def sweep_tables(args, model, x, y, log):
    """Tables 1 and 2: the cells of one sweep (:func:`refode.sweep.run_sweep`) of the
    test split (``OUT/data/test.npz``, ``OUT/sweep.json``, ``OUT/sweep/``).

    A compression row's seconds are the change of basis plus the evaluation; a steps
    row's the evaluation.
    """
    compression, steps = sweep_grids(model)
    data = os.path.join(args.out, "data")
    os.makedirs(data, exist_ok=True)
    with _io.atomic_path(os.path.join(data, "test.npz")) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x=x, y=y)
    config = os.path.join(args.out, "sweep.json")
    _io.write_text(config, json.dumps({"model": "model.h5", "grid": compression + steps,
                                       "batch_size": EVAL_SENTENCES}, indent=1) + "\n")
    result = run_sweep(config, [os.path.join(data, "test.npz")],
                       os.path.join(args.out, "sweep"), n_workers=max(args.workers, 1),
                       processes=args.workers > 0, progress=not args.quiet,
                       retry_failed=args.retry_failed)
    cells = {r["id"]: r for r in result.rows}

    def rows(grids, method_of_trained, timed_compression):
        out = []
        for i in _ids(grids, model):
            r = cells[i]
            if r["status"] != "ok":
                raise SystemExit(f"error: sweep cell {i} failed: {r['error']}")
            trained = (r["basis"], r["n_basis"]) == (model.basis.family, model.basis.n)
            out.append({"basis": r["basis"], "n_basis": r["n_basis"],
                        "method": method_of_trained if trained else r["method"],
                        "scheme": r["scheme"], "n_steps": r["n_steps"],
                        "accuracy": r["accuracy"], "depth_parameters": r["depth_parameters"],
                        "parameters": r["n_parameters"],
                        "seconds": r["seconds"] + (r["compress_seconds"] if timed_compression
                                                   and not trained else 0.0)})
            log(out[-1])
        return out
    return rows(compression, "trained", True), rows(steps, "trained", False)


def _cell(key, value):
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if key == "seconds":
        return f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(rows):
    """A markdown table of report rows (the :data:`COLUMNS`)."""
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(k, r[k]) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def tables_text(report):
    """``tables.md``: both tables with the notes needed to read them."""
    s = report["summary"]
    k = s["n_basis"]
    return "\n".join([
        f"UD English EWT UPOS tagging, test split ({s['test_tokens']:,} tokens, "
        f"{100 * s['test_unknown']:.1f}% unknown to the vocabulary). Tagger width "
        f"{report['settings']['width']}, piecewise-constant weights trained with "
        f"refinement K = N = 1 -> {k}, Euler; dev accuracy {100 * s['dev_accuracy']:.2f}%.",
        "",
        f"Compression without retraining: the {k} coefficient tensors of the ODE-block "
        f"projected (exact L2) or interpolated onto K basis functions, evaluated with Euler "
        f"at N = {k}. fem_linear: K nodes (K - 1 elements); piecewise_linear (DG): K / 2 "
        f"elements; rows of equal K have equal parameter counts. Halving K by projection "
        f"costs {s['halving_loss_points']:.2f} points.",
        "",
        markdown(report["compression"]),
        "",
        "Graph shortening of the trained model (no change of weights): N steps of each "
        "scheme.",
        "",
        markdown(report["steps"]),
        "",
    ])


# ------------------------------------------------------------------ the run
def parse_args(argv):
    p = argparse.ArgumentParser(prog="validation/tagging.py", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with *-ud-{train,dev,test}.conllu[.xz]")
    p.add_argument("--out", default=os.path.join("out", "tagging"), help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=lambda s: [int(e) for e in s.split(",")],
                   default=list(EPOCHS_PER_LEVEL),
                   help="epochs per level K = N = 1, 2, 4, ... (comma-separated; "
                        f"default {','.join(map(str, EPOCHS_PER_LEVEL))})")
    p.add_argument("--width", type=int, default=WIDTH)
    p.add_argument("--ffn", type=int, default=FFN)
    p.add_argument("--lr", type=float, default=LEARNING_RATE)
    p.add_argument("--warmup", type=int, default=WARMUP)
    p.add_argument("--batch-tokens", type=int, default=BATCH_TOKENS)
    p.add_argument("--word-dropout", type=float, default=WORD_DROPOUT,
                   help="alpha of the word dropout alpha / (alpha + count); 0: none")
    p.add_argument("--max-sentences", type=int, default=0,
                   help="train on the first sentences only (0: all)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.h5")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, default=2,
                   help="sweep worker processes (0: one thread in this process)")
    p.add_argument("--retry-failed", action="store_true",
                   help="with a sweep folder from an earlier run, recompute its failed cells too")
    args = p.parse_args(argv)
    if not args.epochs or min(args.epochs) < 1:
        p.error("--epochs must be positive integers, one per level, e.g. 3,2,2,2")
    return args


def main(argv=None):
    """Run the experiment; returns the report (also written to ``OUT/report.json``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    started = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)

    def log(message):
        if not args.quiet:
            if isinstance(message, dict):
                message = "  ".join(f"{k}={_cell(k, v)}" for k, v in message.items())
            print(message, file=sys.stderr, flush=True)

    with single_threaded_blas():
        return _run(args, argv, started, log)


def _run(args, argv, started, log):
    data, stats = load(args.data, args.max_sentences)
    log(f"vocabulary {len(data['vocab']):,} ids ({data['vocab'].n_signatures} signatures); "
        f"unknown tokens: dev {100 * stats['dev']['unknown']:.1f}%, "
        f"test {100 * stats['test']['unknown']:.1f}%")
    model, history = train(data, args)
    trained_at = time.perf_counter()
    refode.save(model, os.path.join(args.out, "model.h5"))
    test_x, test_y = data["test"]
    compression, steps = sweep_tables(args, model, test_x, test_y, log)
    full = compression[0]["accuracy"]
    half = next(r["accuracy"] for r in compression if r["basis"] == BASIS
                and r["method"] == "projection" and r["n_basis"] == model.basis.n // 2) \
        if model.basis.n > 1 else full
    commit, dirty = git_revision()
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in ["validation/tagging.py", *argv]),
        "seed": args.seed, "refode_revision": commit, "refode_dirty": dirty,
        "refode_version": refode.__version__,
        "settings": {k: v for k, v in vars(args).items()},
        "data": stats,
        "summary": {"n_basis": model.basis.n, "test_accuracy": full,
                    "dev_accuracy": evaluate(model, *data["dev"], batch_size=EVAL_SENTENCES,
                                             collate=trim_padding),
                    "halving_loss_points": 100 * (full - half),
                    "test_tokens": stats["test"]["tokens"],
                    "test_unknown": stats["test"]["unknown"]},
        "history": history, "compression": compression, "steps": steps,
        "seconds": {"training": trained_at - started,
                    "total": time.perf_counter() - started},
    }
    _io.write_text(os.path.join(args.out, "report.json"), json.dumps(report, indent=1))
    tables = tables_text(report)
    _io.write_text(os.path.join(args.out, "tables.md"), tables)
    print(tables)
    return report


if __name__ == "__main__":
    main()
