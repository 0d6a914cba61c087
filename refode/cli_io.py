"""Commands of ``refode`` on HDF5 files: info, compress, golden, check, eval, convergence,
convert.

Each ``_cmd_*`` returns the exit code; bad input raises a refode error, which
:func:`refode.cli.main` prints as one line with exit code 2.
"""
import argparse
import math
import os
import sys
import warnings

import numpy as np

from . import _cli_args
from .backend import NAMES as BACKENDS
from .errors import RefodeError, RefodeWarning
from .io import load, save
from .io import golden as golden_io
from .io.data import load_data
from .io.layout import CONTINUOUS_NET, TAGGER, config_of
from .io.reference import MODES, seeded_inputs
from .io.summary import counts, depth_dependent, describe, relative_l2_error

#: exit code of ``refode check`` when an array is outside the tolerances.
EXIT_MISMATCH = 1
#: samples per forward pass of ``refode eval``.
EVAL_BATCH = 256
#: default seed and batch of generated inputs.
DEFAULT_SEED, DEFAULT_BATCH = 0, 4
#: default step-count multipliers of ``refode convergence`` (N, 2N, 4N, 8N).
CONVERGENCE_FACTORS = (1, 2, 4, 8)

EXAMPLES = {
    "info": """examples:
  refode info net.h5                 # blocks, bases, K, N, scheme, parameter counts, dtype
  refode info golden.h5              # also works on golden files
""",
    "compress": """examples:
  refode compress net.h5 net8.h5 --basis piecewise_constant --n-basis 8
  refode compress net.h5 net4.h5 --basis legendre --n-basis 4 --n-steps 8 --method projection
  refode compress net.h5 net2.h5 --basis fem_linear --n-basis 2 --stats recalibrate \
      --data train.npz                                 # re-estimate the statistics
  refode compress net.h5 net2.h5 --basis legendre --n-basis 2 --stats positive
statistics (--stats): project (moved like the weights), recalibrate (re-estimated on the
first --calibration-samples images of --data, weights frozen), positive (variances moved
in the log domain, kept positive). A model whose running variance is not positive at a
stage is not written unless --allow-nonpositive-stats is given.
""",
    "golden": """examples:
  refode golden net.h5 -o golden.h5                    # seeded inputs (seed 0, batch 4)
  refode golden net.h5 -o golden.h5 --seed 3 --batch 8 --mode eval
  refode golden net.h5 -o golden.h5 --inputs batch.npz # an .npz with x and y
""",
    "check": """examples:
  refode check golden.h5 candidate.h5                  # tolerances stored in golden.h5
  refode check golden.h5 candidate.h5 --rtol 1e-10 --atol 1e-14
exit code: 0 when every array passes, 1 when any fails, 2 for bad input.
""",
    "eval": """examples:
  refode eval net.h5 --data test.npz                   # x, y arrays
  refode eval net.h5 --data t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz
  refode eval net.h5 --data test.npz --scheme rk4 --n-steps 4
  refode eval net.h5 --data test.npz --backend cuda   # on the GPU
""",
    "convergence": """examples:
  refode convergence net.h5                            # the model's scheme, N .. 8N
  refode convergence net.h5 --schemes euler midpoint rk4 --n-steps 2 4 8 16 32
""",
    "convert": """examples:
  refode convert statefulodenets runs/ContinuousImageClassifier_... net.h5
  refode convert statefulodenets runs/ContinuousTransformer_... tagger.h5 --dtype float32
reads model.json, optimizer_hyper_params.json and the latest checkpoint_<n> of a run
folder of the original Stateful ODE-Nets code (JAX/Flax); nothing is written on error.
""",
}
#: the original code's class of each refode family (``refode convert``'s summary).
ORIGINAL_CLASS = {CONTINUOUS_NET: "ContinuousImageClassifier", TAGGER: "ContinuousTransformer"}
#: sources ``refode convert`` reads.
CONVERT_SOURCES = ("statefulodenets",)


_positive = _cli_args.positive   # argparse types: messages name the flag and the rule


def _nonnegative_float(text):
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _cmd_info(args):
    print("\n".join([f"file: {args.file}", *describe(args.file)]))
    return 0


def _cmd_compress(args):
    _cli_args.check_output("OUT.h5", args.output, [args.input, *(args.data or [])],
                           "refode-weights", args.force)
    model = load(args.input)
    new = _compressed(model, args)
    (total_a, dep_a), (total_b, dep_b) = counts(model), counts(new)
    print(f"basis: {model.basis.family} K={model.basis.n} N={model.n_steps} -> "
          f"{new.basis.family} K={new.basis.n} N={new.n_steps} ({args.method}, "
          f"statistics {args.stats})")
    print(f"parameters: {total_a:,} -> {total_b:,}")
    print(f"depth-dependent parameters: {dep_a:,} -> {dep_b:,}")
    after = depth_dependent(new)
    for block, arrays in depth_dependent(model).items():
        err = relative_l2_error(arrays, model.basis, after[block], new.basis)
        print(f"  {block}: relative L2 error {err:.3e}")
    _check_stats(new, args.allow_nonpositive_stats)
    save(new, args.output)
    print(f"wrote {args.output}")
    return 0


#: images of --data that ``refode compress --stats recalibrate`` uses by default.
CALIBRATION_SAMPLES = 1024


def _compressed(model, args):
    """``model.rediscretize`` with the statistics policy of ``args`` (``compress``)."""
    stats, data = args.stats, None
    if (stats == "recalibrate") != (args.data is not None):
        raise RefodeError("--stats recalibrate needs --data PATH, and --data is only used "
                          "by it")
    family, cfg = config_of(model)
    if family != CONTINUOUS_NET:
        if stats != "project":
            raise RefodeError(f"--stats {stats}: a {family} has no running statistics; "
                              "leave --stats at project")
        return model.rediscretize(basis=args.basis, n_basis=args.n_basis,
                                  n_steps=args.n_steps, change=args.method)
    if stats == "recalibrate":
        data = load_data(args.data, cfg["in_channels"])[0][:args.calibration_samples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RefodeWarning)  # _check_stats reports them
        return model.rediscretize(basis=args.basis, n_basis=args.n_basis,
                                  n_steps=args.n_steps, change=args.method, stats=stats,
                                  data=data)


def _check_stats(model, allow):
    """Refuse (or, with ``allow``, warn about) variances that are not positive at a stage."""
    if config_of(model)[0] != CONTINUOUS_NET:
        return
    bad = [(name, var, t, count) for name, layer in model.ode_blocks().items()
           for var, t, count in layer.nonpositive_variances()]
    if not bad:
        return
    name, var, t, count = bad[0]
    message = (f"running variance {name}.{var} + eps <= 0 at the stage t = {float(t):.6g} "
               f"({t}, {count} channels; {len(bad)} stage(s) in all): the model gives NaN "
               "there")
    if not allow:
        raise RefodeError(f"{message}; use --stats recalibrate --data PATH or --stats "
                          "positive, or pass --allow-nonpositive-stats to write it anyway")
    print(f"refode compress: warning: {message}", file=sys.stderr)


def _cmd_golden(args):
    _cli_args.check_output("-o", args.output, [args.model, args.inputs], "refode-golden",
                           args.force)
    model = load(args.model, backend=args.backend)
    if args.inputs is not None:
        if args.seed is not None or args.batch is not None:
            raise RefodeError("pass either --inputs or --seed/--batch, not both")
        x, y = load_data([args.inputs])
    else:
        x, y = seeded_inputs(model, args.seed or DEFAULT_SEED, args.batch or DEFAULT_BATCH)
    arrays = golden_io.write(args.output, model, x, y, args.mode, args.rtol, args.atol)
    print(f"wrote {args.output}: loss {float(arrays['outputs/loss']):.17g}, "
          f"{len(arrays)} arrays")
    return 0


def _cmd_check(args):
    rows, rtol, atol = golden_io.compare(args.golden, args.candidate, args.rtol, args.atol)
    width = max(len(r["array"]) for r in rows)
    print(f"tolerance: |candidate - golden| <= {atol:g} + {rtol:g} |golden|")
    print(f"{'array':<{width}}  {'max abs err':>11}  {'max rel err':>11}  result")
    for r in rows:
        status = "pass" if r["passed"] else f"FAIL {r['note']}".rstrip()
        print(f"{r['array']:<{width}}  {r['max_abs']:>11.3e}  {r['max_rel']:>11.3e}  {status}")
    failed = [r["array"] for r in rows if not r["passed"]]
    print(f"{len(rows) - len(failed)} of {len(rows)} arrays pass"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EXIT_MISMATCH if failed else 0


def _evaluate(model, x, y):
    """Mean loss, accuracy, count and non-finite predictions (counted wrong), batched."""
    from .train import count_correct, count_nonfinite

    is_net = config_of(model)[0] == CONTINUOUS_NET
    losses, correct, count, nonfinite = [], 0, 0, 0
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start:start + EVAL_BATCH], np.asarray(y[start:start + EVAL_BATCH])
        if is_net:
            xb = np.asarray(xb, dtype=model.dtype)
            losses.append(model.loss(xb, yb, train=False) * len(xb))
        else:
            losses.append(model.loss(xb, yb) * int(np.sum(yb != -100)))
        logits = model.forward(xb)
        c, n = count_correct(logits, yb)
        correct, count = correct + c, count + n
        nonfinite += count_nonfinite(logits, yb)
    return sum(losses) / max(count, 1), correct / max(count, 1), count, nonfinite


def _checked_data(model, x, y, paths):
    """The whole data set validated as the model's loss takes it, before any work."""
    where = " ".join(map(str, paths))
    if len(x) == 0 or len(y) == 0:
        raise RefodeError(f"--data {where} holds no samples; pass a data set with at least one")
    try:
        return model.check_batch(x, y)
    except RefodeError as exc:
        raise type(exc)(f"--data {where}: {exc}") from None


def _cmd_eval(args):
    model = load(args.model, backend=args.backend)
    if args.scheme or args.n_steps:
        model = model.rediscretize(scheme=args.scheme, n_steps=args.n_steps)
    family, cfg = config_of(model)
    x, y = load_data(args.data, cfg["in_channels"] if family == CONTINUOUS_NET else None)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    x, y = _checked_data(model, x, y, args.data)
    loss, accuracy, count, nonfinite = _evaluate(model, x, y)
    print(f"scheme {model.scheme}  N {model.n_steps}  samples {count}  "
          f"loss {loss:.6f}  accuracy {accuracy:.4f}  non-finite {nonfinite}")
    return 0


def _cmd_convergence(args):
    model = load(args.model)
    schemes = args.schemes or [model.scheme]
    steps = sorted(set(args.n_steps or [model.n_steps * f for f in CONVERGENCE_FACTORS]))
    x, _ = seeded_inputs(model, args.seed, args.batch)
    print("max |logits(N) - logits(finest N)| per scheme; order = observed convergence order")
    print(f"{'scheme':<10} {'N':>6} {'difference':>12} {'order':>7}")
    for scheme in schemes:
        outs = [model.rediscretize(scheme=scheme, n_steps=n).forward(x) for n in steps]
        diffs = [float(np.max(np.abs(o - outs[-1]))) for o in outs]
        for i, (n, d) in enumerate(zip(steps, diffs)):
            order = ""
            if 0 < i < len(steps) - 1 and d > 0 and diffs[i - 1] > 0:
                order = f"{math.log(diffs[i - 1] / d) / math.log(n / steps[i - 1]):.2f}"
            print(f"{scheme:<10} {n:>6} {d:>12.3e} {order:>7}")
    return 0


def _cmd_convert(args):
    from .io.statefulodenets import checkpoint_path, from_statefulodenets, input_files

    out = args.output
    if os.path.lexists(out):
        if os.path.exists(out) and any(os.path.samefile(out, p)
                                       for p in input_files(args.run_dir)):
            raise RefodeError(f"OUT.h5 {out} is an input file of the run; choose another path")
        if os.path.isdir(out):
            raise RefodeError(f"OUT.h5 {out} is a folder; give a file path")
        if not args.force:
            raise RefodeError(f"OUT.h5 {out} exists; pass --force to overwrite it")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RefodeWarning)
        model = from_statefulodenets(args.run_dir, dtype=args.dtype)
    family, cfg = config_of(model)
    print(f"read {checkpoint_path(args.run_dir)} ({ORIGINAL_CLASS[family]})")
    print(f"model: {family}, {model.dtype}, {model.num_parameters():,} parameters")
    print(f"basis: {cfg['basis']} K={cfg['n_basis']}  scheme: {cfg['scheme']} "
          f"N={cfg['n_steps']}")
    for w in caught:
        print(f"refode convert: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    save(model, out)
    print(f"wrote {out}")
    return 0


def _add(sub, name, help_text, func):
    parser = sub.add_parser(name, help=help_text, description=help_text,
                            epilog=EXAMPLES[name],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=func)
    return parser


def _add_backend(parser):
    """``--backend`` of the commands that compute (default: the file's)."""
    parser.add_argument("--backend", choices=BACKENDS, metavar="BACKEND",
                        help=f"kernels to run: {', '.join(BACKENDS)} (default: the one the "
                        "file records, cpu for older files); cuda needs numba-cuda and a GPU "
                        "(or NUMBA_ENABLE_CUDASIM=1)")


def add_commands(sub):
    """Register the file commands on the subparsers ``sub`` of ``refode``."""
    p = _add(sub, "info", "summarise a weight or golden file", _cmd_info)
    p.add_argument("file", metavar="FILE.h5")
    p = _add(sub, "compress", "move the depth-dependent weights onto another basis",
             _cmd_compress)
    p.add_argument("input", metavar="IN.h5")
    p.add_argument("output", metavar="OUT.h5")
    p.add_argument("--basis", required=True, metavar="FAMILY")
    p.add_argument("--n-basis", required=True, type=_cli_args.N_BASIS, metavar="K")
    p.add_argument("--n-steps", type=_cli_args.N_STEPS, metavar="N", help="default: unchanged")
    p.add_argument("--method", choices=("projection", "interpolation"), default="projection")
    p.add_argument("--force", action="store_true",
                   help="overwrite OUT.h5 even if it is the input or not a weight file")
    p.add_argument("--stats", choices=("project", "recalibrate", "positive"), default="project",
                   help="running statistics after the change of basis (default: project)")
    p.add_argument("--data", nargs="+", metavar="PATH",
                   help="images of --stats recalibrate: an .npz with x (and y), or IMAGES "
                   "LABELS in IDX (MNIST) format")
    p.add_argument("--calibration-samples", type=_positive, default=CALIBRATION_SAMPLES,
                   metavar="M", help=f"images of --data used (default: {CALIBRATION_SAMPLES})")
    p.add_argument("--allow-nonpositive-stats", action="store_true",
                   help="write the model even if a running variance is not positive at a "
                   "stage (it gives NaN there)")
    p = _add(sub, "golden", "write golden vectors (outputs, loss, gradients)", _cmd_golden)
    p.add_argument("model", metavar="MODEL.h5")
    p.add_argument("-o", "--output", required=True, metavar="GOLDEN.h5")
    p.add_argument("--inputs", metavar="FILE.npz", help="inputs x and targets y")
    p.add_argument("--seed", type=_cli_args.seed,
                   help=f"seed of generated inputs ({DEFAULT_SEED})")
    p.add_argument("--batch", type=_cli_args.BATCH,
                   help=f"batch of generated inputs ({DEFAULT_BATCH})")
    p.add_argument("--mode", choices=MODES, default="train",
                   help="batch statistics (train, default) or running statistics (eval)")
    p.add_argument("--rtol", type=_nonnegative_float, help="stored tolerance (dtype default)")
    p.add_argument("--atol", type=_nonnegative_float, help="stored tolerance (dtype default)")
    p.add_argument("--force", action="store_true",
                   help="overwrite GOLDEN.h5 even if it is an input or not a golden file")
    _add_backend(p)
    p = _add(sub, "check", "compare a candidate file with a golden file", _cmd_check)
    p.add_argument("golden", metavar="GOLDEN.h5")
    p.add_argument("candidate", metavar="CANDIDATE.h5")
    p.add_argument("--rtol", type=_nonnegative_float, help="default: stored in GOLDEN.h5")
    p.add_argument("--atol", type=_nonnegative_float, help="default: stored in GOLDEN.h5")
    p = _add(sub, "eval", "loss and accuracy of a model on a data set", _cmd_eval)
    p.add_argument("model", metavar="MODEL.h5")
    p.add_argument("--data", required=True, nargs="+", metavar="PATH",
                   help="an .npz with x and y, or IMAGES LABELS in IDX (MNIST) format")
    p.add_argument("--scheme", help="integrate with this tableau instead")
    p.add_argument("--n-steps", type=_cli_args.N_STEPS, metavar="N",
                   help="integrate with N steps")
    p.add_argument("--limit", type=_positive, help="evaluate only the first LIMIT samples")
    _add_backend(p)
    p = _add(sub, "convergence", "output differences as the discretization refines",
             _cmd_convergence)
    p.add_argument("model", metavar="MODEL.h5")
    p.add_argument("--schemes", nargs="+", metavar="SCHEME")
    p.add_argument("--n-steps", nargs="+", type=_cli_args.N_STEPS, metavar="N")
    p.add_argument("--seed", type=_cli_args.seed, default=DEFAULT_SEED)
    p.add_argument("--batch", type=_cli_args.BATCH, default=DEFAULT_BATCH)
    p = _add(sub, "convert", "convert a run of the original code into a refode weight file",
             _cmd_convert)
    p.add_argument("source", choices=CONVERT_SOURCES, metavar="SOURCE",
                   help="what RUN_DIR holds: statefulodenets (the original paper code's run "
                   "folder)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("output", metavar="OUT.h5")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the model (default: float64)")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT.h5")
