"""``refode sweep``: evaluate a trained model over a grid of discretizations on Dask."""
import argparse

#: examples shown by ``refode sweep --help``.
EPILOG = """example:
  cat > sweep.json <<'END'
  {"model": "model.h5",
   "grid": {"basis": ["piecewise_constant", "fem_linear", "legendre"], "n_basis": [4, 2],
            "stats": ["project", "recalibrate", "positive"], "scheme": ["euler"],
            "n_steps": ["K", 8]},
   "calibration": {"data": ["train.npz"], "samples": 512}}
  END
  refode sweep sweep.json --data test.npz --out out/sweep           # LocalCluster
  refode sweep sweep.json --data test.npz --out out/sweep --workers 2
  refode sweep sweep.json --data t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz \\
      --scheduler tcp://10.0.0.5:8786 --out out/sweep               # an existing cluster

grid keys (lists): basis, n_basis (K), method (projection|interpolation), stats
(project|recalibrate|positive), scheme, n_steps (N, or "K" for N = K); null or a missing
key means the model's value. OUT gets results.csv, results.json, pareto_parameters.png,
pareto_time.png and cells/<id>.json (one per finished cell: rerunning the same command
computes only the missing cells; --retry-failed also the failed ones).
"""


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _cmd_sweep(args):
    from .sweep import format_table, run_sweep

    result = run_sweep(args.config, args.data, args.out, scheduler=args.scheduler,
                       n_workers=args.workers, progress=not args.quiet,
                       retry_failed=args.retry_failed)
    print(format_table(result.rows))
    failed = sum(r["status"] != "ok" for r in result.rows)
    print(f"{len(result.rows)} cells ({len(result.computed)} computed, {len(result.reused)} "
          f"reused, {failed} failed); wrote {', '.join(result.paths.values())}")
    return 0


def add_command(sub):
    """Register ``sweep`` on the subparsers ``sub`` of ``refode``."""
    text = "evaluate a model over a grid of bases, K, statistics policies, schemes and N"
    p = sub.add_parser("sweep", help=text, description=text, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.json", help="model file and grid (see below)")
    p.add_argument("--data", required=True, nargs="+", metavar="PATH",
                   help="an .npz with x and y, or IMAGES LABELS in IDX (MNIST) format")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler (default: a LocalCluster here)")
    p.add_argument("--workers", type=_positive, metavar="W",
                   help="LocalCluster worker processes (default: CPUs, at most 4)")
    p.add_argument("--retry-failed", action="store_true",
                   help="recompute cells recorded as failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)
    return p
