"""Benchmark harness of refode against PyTorch eager and JAX jit (issue 11).

One process; refode, PyTorch (``validation/torch_impl``, eager) and JAX
(``validation/jax_impl``, ``jax.jit``, compilation timed apart) run on the same
weights (converted from the refode model by ``refode.interop``), in the same dtype,
with the same number of threads, in alternating repeats; the report gives median times,
the ratio peer time / refode time, achieved GFLOP/s beside a GEMM measured in the same
run, and checks that every peer's outputs and gradients agree with refode's.
Workloads (docs/performance.md): W1, W2, W3, W4, M1, C1.

Usage::

    python benchmarks/run.py [--quick] [--json FILE] [--backend cpu|cuda]
                             [--repeats R] [--only W1,W2,...] [--threads T]

``--quick`` runs tiny sizes with 1-2 repeats (a smoke test). With or without it, the
exit status is 1 when any peer disagrees with refode beyond the tolerance of its dtype.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402  (stdlib only: safe before pinning)

WORKLOADS = ("W1", "W2", "W3", "W4", "M1", "C1")
DTYPES = ("float64", "float32")
PEERS = ("pytorch", "jax")

#: the sizes of issue 11, and the tiny ones of ``--quick``.
SIZES = {
    "full": {
        "W1": {"batch": 32, "channels": 16, "side": 32, "k": 16, "n": 16},
        "W2": {"batch": 16, "length": 64, "width": 128, "heads": 4, "ffn": 512, "k": 4,
               "n": 4, "scheme": "rk4"},
        "W3": {"parameters": 10_000_000},
        "W4": {"batch": 128, "side": 32, "widths": [16, 32, 64], "k": 16, "n": 16},
        "M1": {"batch": 32, "channels": 16, "side": 32, "k": 16, "n": 64},
        "gemm": 2048, "repeats": 5, "slots": 4,
    },
    "quick": {
        "W1": {"batch": 4, "channels": 4, "side": 8, "k": 2, "n": 4},
        "W2": {"batch": 2, "length": 6, "width": 8, "heads": 2, "ffn": 16, "k": 2, "n": 2,
               "scheme": "rk4"},
        "W3": {"parameters": 10_000},
        "W4": {"batch": 4, "side": 8, "widths": [4, 8], "k": 2, "n": 2},
        "M1": {"batch": 4, "channels": 4, "side": 8, "k": 2, "n": 8},
        "gemm": 256, "repeats": 2, "slots": 2,
    },
}
W4_SCHEMES = ("euler", "rk4")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 1-2 repeats: a smoke test of agreement")
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE")
    parser.add_argument("--backend", default="cpu", choices=("cpu", "cuda"),
                        help="refode's backend (the peers run on the CPU)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per library (default 5, --quick 2)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads of {','.join(WORKLOADS)}")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="float64,float32")
    parser.add_argument("--peers", default=",".join(PEERS), help="pytorch,jax (or none)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every library")
    args = parser.parse_args(argv)
    args.only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    bad = sorted(set(args.only) - set(WORKLOADS))
    if bad:
        parser.error(f"unknown workload(s) {bad}; choose from {','.join(WORKLOADS)}")
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if set(args.dtypes) - set(DTYPES):
        parser.error(f"--dtypes takes {','.join(DTYPES)}")
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip() and p != "none"]
    if set(args.peers) - set(PEERS):
        parser.error(f"--peers takes {','.join(PEERS)} or none")
    return args


def setup(threads):
    """Pin threads (before any numeric import), then set each library's own knob."""
    pinned = common.pin_threads(threads)
    import numba
    import numpy  # noqa: F401

    numba.set_num_threads(threads)
    pinned["numba_threads"] = numba.get_num_threads()
    pinned["numba_threading_layer_requested"] = numba.config.THREADING_LAYER
    try:
        from threadpoolctl import threadpool_limits

        pinned["_limits"] = threadpool_limits(threads)
    except ImportError:
        pinned["threadpoolctl"] = "not installed: BLAS threads from the environment only"
    try:
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            pass
        pinned["torch_threads"] = torch.get_num_threads()
        pinned["torch_interop_threads"] = torch.get_num_interop_threads()
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        pinned["jax_devices"] = [str(d) for d in jax.devices()]
    except ImportError:
        pass
    return pinned


def measure(case, dtype, repeats):
    """Check agreement once, then time all libraries in alternation."""
    results = {lib: fn() for lib, (fn, _) in case.runs.items()}
    arrays = {lib: case.runs[lib][1](results[lib]) for lib in case.runs}
    row = {"agreement": {lib: common.agreement(arrays["refode"], arrays[lib], dtype)
                         for lib in case.runs if lib != "refode"},
           "skipped": case.skipped, "compile_s": case.compile_s, "flops": case.flops,
           "info": case.info}
    del results, arrays
    row["times"] = common.alternate({lib: fn for lib, (fn, _) in case.runs.items()}, repeats)
    ref = row["times"]["refode"]["median_s"]
    row["ratio_peer_over_refode"] = {lib: t["median_s"] / ref for lib, t in row["times"].items()
                                     if lib != "refode"}
    if case.flops:
        row["gflops"] = {lib: case.flops / t["median_s"] / 1e9
                         for lib, t in row["times"].items()}
    return row


def print_row(label, row, gemm):
    times = row["times"]
    parts = [f"{label:<18} refode {1e3 * times['refode']['median_s']:9.2f} ms"]
    for lib in PEERS:
        if lib in times:
            ok = row["agreement"][lib]
            comp = row["compile_s"].get(lib)
            parts.append(f"{lib} {1e3 * times[lib]['median_s']:9.2f} ms "
                         f"(x{row['ratio_peer_over_refode'][lib]:.2f}"
                         f"{'' if comp is None else f', compile {comp:.1f} s'}, "
                         f"{'agree' if ok['ok'] else 'DISAGREE'} {ok['worst_error']:.1e})")
    if "gflops" in row:
        parts.append(f"refode {row['gflops']['refode']:.1f} GFLOP/s of GEMM {gemm:.1f}")
    print("  ".join(parts), flush=True)
    for lib, why in row["skipped"].items():
        print(f"{'':<18} {lib}: skipped, {why}", flush=True)


def main(argv=None):
    args = parse(argv)
    started = time.perf_counter()
    pinned = setup(args.threads)
    import numpy as np

    from benchmarks import conv, misc, tagger

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    repeats = args.repeats or sizes["repeats"]
    report = {"command": " ".join([os.path.basename(sys.argv[0]), *(argv or sys.argv[1:])]),
              "mode": mode, "backend": args.backend, "repeats": repeats,
              "threads": {k: v for k, v in pinned.items() if not k.startswith("_")},
              "machine": common.machine(), "rtol": common.RTOL, "gemm": {},
              "workloads": {}}
    print(f"refode benchmarks ({mode}), backend {args.backend}, {args.threads} threads, "
          f"{repeats} repeats, load {report['machine']['load_average']}", flush=True)
    for dtype in args.dtypes:
        report["gemm"][dtype] = common.gemm_gflops(sizes["gemm"], np.dtype(dtype), repeats)
        print(f"GEMM {dtype} n={sizes['gemm']}: {report['gemm'][dtype]['gflops']:.1f} GFLOP/s",
              flush=True)
    failures = []
    builders = {"W1": conv.w1, "W2": tagger.w2, "W4": conv.w4}
    for name in args.only:
        start = time.perf_counter()
        entry = {"size": sizes.get(name), "rows": {}}
        if name in builders:
            variants = [(d, s) for d in args.dtypes for s in
                        (W4_SCHEMES if name == "W4" else (None,))]
            for dtype, scheme in variants:
                size = dict(sizes[name], **({"scheme": scheme} if scheme else {}))
                label = dtype if scheme is None else f"{dtype}/{scheme}"
                case = builders[name](np.dtype(dtype), size, args.backend, args.peers)
                row = measure(case, dtype, repeats)
                entry["rows"][label] = row
                print_row(f"{name} {label}", row, report["gemm"][dtype]["gflops"])
                failures += common.disagreements(f"{name} {label}", row["agreement"])
        elif name == "W3":
            for dtype in args.dtypes:
                row = misc.w3(np.dtype(dtype), sizes["W3"], args.backend, repeats)
                entry["rows"][dtype] = row
                ok = row["agreement"]["pair_mean"]
                print(f"W3 {dtype:<15} project {1e3 * row['times']['refode']['median_s']:9.2f} ms"
                      f"  copy {1e3 * row['times']['copy']['median_s']:9.2f} ms  "
                      f"ratio {row['ratio_project_to_copy']:.2f}  "
                      f"({'agree' if ok['ok'] else 'DISAGREE'} {ok['worst_error']:.1e})",
                      flush=True)
                if not ok["ok"]:
                    failures.append(f"W3 {dtype}: projection off by {ok['worst_error']:.2e}")
        elif name == "M1":
            for dtype in args.dtypes:
                row = conv.m1(np.dtype(dtype), sizes["M1"], args.backend, sizes["slots"])
                entry["rows"][dtype] = row
                print(f"M1 {dtype:<15} peak MiB " + "  ".join(
                    f"{k} {v / 2**20:.1f}" for k, v in row["peak_bytes"].items())
                    + "  ratio to forward " + "  ".join(
                    f"{k} {v:.2f}" for k, v in row["ratio_to_forward"].items()), flush=True)
                if not row["strategies_bitwise_equal"]:
                    failures.append(f"M1 {dtype}: checkpoint strategies' gradients differ")
        elif name == "C1":
            row = misc.c1()
            entry["rows"]["float64"] = row
            print("C1 first call s   " + "  ".join(
                f"{k} {v:.2f}" for k, v in row["first_call_s"].items()), flush=True)
        entry["wall_s"] = time.perf_counter() - start
        report["workloads"][name] = entry
    return common.finish(report, failures, args.json, started)


if __name__ == "__main__":
    sys.exit(main())
