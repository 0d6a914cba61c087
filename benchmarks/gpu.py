"""GPU benchmark: W1, W2 and W4 of the harness, refode's CUDA backend against PyTorch CUDA.

The workloads, sizes, FLOP counts, timing and agreement checks are those of
``benchmarks/run.py`` (issue 11; builders in ``conv.py`` and ``tagger.py``); this script
runs refode with ``backend="cuda"`` and PyTorch on ``torch.device("cuda")`` in one process,
in alternating repeats, with ``numba.cuda.synchronize()`` / ``torch.cuda.synchronize()``
inside each timed call (kernels are asynchronous). Before timing, refode-cuda's outputs
and gradients are compared with PyTorch CUDA's and with refode's CPU backend; without
PyTorch CUDA, with PyTorch CPU instead (agreement only, not timed).

Usage::

    python benchmarks/gpu.py [--quick] [--json FILE] [--repeats R] [--only W1,W2,W4]
                             [--dtypes float64,float32] [--threads T]

Exit status: 0, 1 when any comparison disagrees beyond the tolerance of its dtype
(``common.RTOL``), 2 when CUDA cannot run here (neither a GPU nor
``NUMBA_ENABLE_CUDASIM=1``). Under the simulator ``--quick`` uses tiny sizes
(:data:`SIMULATOR_SIZES`) and its times say nothing about a GPU.
"""
import argparse
import inspect
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import common, run  # noqa: E402  (stdlib only: safe before pinning)

WORKLOADS = ("W1", "W2", "W4")
#: ``--quick`` under the simulator, which runs every CUDA thread as a Python thread.
SIMULATOR_SIZES = {
    "W1": {"batch": 2, "channels": 2, "side": 4, "k": 1, "n": 1},
    "W2": {"batch": 1, "length": 4, "width": 8, "heads": 2, "ffn": 8, "k": 1, "n": 1,
           "scheme": "rk4"},
    "W4": {"batch": 2, "side": 4, "widths": [2, 4], "k": 1, "n": 1},
    "repeats": 1,
}
#: launch shapes in the simulator (fewer Python threads per block; refode reads both
#: before compiling): ``config.CUDA_THREADS_PER_BLOCK`` and the GEMM tile side.
SIMULATOR_THREADS_PER_BLOCK = 8
SIMULATOR_TILE = 4
#: ``sys.setswitchinterval`` in the simulator: its launcher polls its threads without
#: releasing the GIL, so at Python's default 5 ms each thread's turn waits up to 5 ms
#: (W1 about 4x slower).
SIMULATOR_SWITCH_INTERVAL_S = 2e-4
#: side of the square cuBLAS GEMM (``torch.matmul`` on CUDA) measured as the device's limit.
GEMM_N = {"full": 8192, "quick": 256}
#: the library names of the report.
REFODE, TORCH_CUDA, REFODE_CPU, TORCH_CPU = "refode-cuda", "pytorch-cuda", "refode-cpu", \
    "pytorch-cpu"


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (tiny in the simulator), 1-2 repeats: agreement")
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per library (default 5, --quick 2 or 1)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads of {','.join(WORKLOADS)}")
    parser.add_argument("--dtypes", default=",".join(run.DTYPES), help="float64,float32")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every library")
    args = parser.parse_args(argv)
    args.only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    if not args.only or set(args.only) - set(WORKLOADS):
        parser.error(f"--only takes workloads of {','.join(WORKLOADS)}")
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not args.dtypes or set(args.dtypes) - set(run.DTYPES):
        parser.error(f"--dtypes takes {','.join(run.DTYPES)}")
    return args


# --------------------------------------------------------------------------- setup
def cuda_or_exit():
    """``(numba.cuda, simulator?)``, or None after one line on stderr (CUDA cannot run)."""
    from refode import backend
    from refode.errors import RefodeError

    try:
        backend.get("cuda")
    except RefodeError as err:
        print(f"benchmarks/gpu.py: {err}", file=sys.stderr)
        return None
    from numba import config, cuda

    return cuda, bool(config.ENABLE_CUDASIM)


def simulator_settings():
    """Smaller blocks and a shorter GIL switch interval in the simulator (see
    :data:`SIMULATOR_THREADS_PER_BLOCK`, :data:`SIMULATOR_SWITCH_INTERVAL_S`); returns
    what was set, for the JSON. Call before any CUDA kernel is compiled."""
    import importlib

    from refode import config

    config.CUDA_THREADS_PER_BLOCK = SIMULATOR_THREADS_PER_BLOCK
    sys.setswitchinterval(SIMULATOR_SWITCH_INTERVAL_S)
    shapes = {"CUDA_THREADS_PER_BLOCK": SIMULATOR_THREADS_PER_BLOCK,
              "switch_interval_s": SIMULATOR_SWITCH_INTERVAL_S}
    try:
        gemm = importlib.import_module("refode.kernels.cuda._gemm")
    except ImportError:
        return shapes
    if hasattr(gemm, "TILE"):
        gemm.TILE = shapes["gemm_TILE"] = SIMULATOR_TILE
    return shapes


def torch_cuda():
    """``(torch or None, why PyTorch CUDA is not used or None)``; disables TF32 (same
    arithmetic as refode's float32)."""
    try:
        import torch
    except ImportError as err:
        return None, f"torch not installed ({err})"
    if not torch.cuda.is_available():
        return torch, f"PyTorch {torch.__version__} has no CUDA device here"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch, None


def device_info(cuda, simulator):
    """The CUDA device numba sees: name, compute capability, memory (bytes)."""
    dev = cuda.get_current_device()
    name = getattr(dev, "name", None)
    name = name.decode() if isinstance(name, bytes) else name
    free, total = cuda.current_context().get_memory_info()
    finite = [v if v != float("inf") else None for v in (free, total)]
    return {"simulator": simulator,
            "name": "Numba CUDA simulator (no GPU)" if simulator else name,
            "compute_capability": list(dev.compute_capability),
            "memory_free_bytes": finite[0], "memory_total_bytes": finite[1]}


def versions(simulator, torch):
    """:func:`common.machine` plus numba-cuda, the CUDA driver and runtime, torch's CUDA."""
    info = common.machine()
    try:
        import numba_cuda

        info["numba_cuda"] = numba_cuda.__version__
    except ImportError:
        info["numba_cuda"] = None
    if not simulator:
        from numba.cuda.cudadrv import driver, runtime

        info["cuda_driver"] = list(driver.get_version())
        info["cuda_runtime"] = list(runtime.get_version())
    if torch is not None:
        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["torch_device"] = torch.cuda.get_device_name(0)
            info["cudnn"] = torch.backends.cudnn.version()
            info["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32,
                            "cudnn": torch.backends.cudnn.allow_tf32}
    return info


# --------------------------------------------------------------------------- one row
def synced(fn, sync):
    """``fn`` followed by ``sync()``: a timed call includes the kernels it queued."""
    def call():
        result = fn()
        sync()
        return result

    return call


def refode_arrays(arrays):
    """refode-cuda's ``{name: array}`` as host NumPy arrays (device arrays are copied)."""
    import numpy as np

    return {k: v.copy_to_host() if hasattr(v, "copy_to_host") else np.asarray(v)
            for k, v in arrays.items()}


def build(builder, dtype, size, backend, libraries, device):
    """``builder(...)`` of conv.py / tagger.py with PyTorch on ``device`` (passed as
    ``torch_device`` only when not "cpu": builders without that keyword build on the CPU)."""
    if device == "cpu":
        return builder(dtype, size, backend, libraries)
    return builder(dtype, size, backend, libraries, torch_device=device)


def measure_row(builder, dtype, size, repeats, cuda, torch, torch_skip):
    """One workload row: run.measure of refode-cuda (and PyTorch CUDA), then the
    agreement of refode-cuda with refode-cpu (and PyTorch CPU without PyTorch CUDA)."""
    on_gpu = torch is not None and torch_skip is None
    case = build(builder, dtype, size, "cuda", ["pytorch"] if on_gpu else [],
                 "cuda" if on_gpu else "cpu")
    seen = {}
    step, outputs = case.runs["refode"]
    case.runs["refode"] = (synced(step, cuda.synchronize),
                           lambda r: seen.setdefault(REFODE, refode_arrays(outputs(r))))
    if on_gpu:
        step, outputs = case.runs["pytorch"]
        case.runs["pytorch"] = (synced(step, torch.cuda.synchronize), outputs)
    row = run.measure(case, str(dtype), repeats)
    rename = {"refode": REFODE, "pytorch": TORCH_CUDA}
    for key in ("agreement", "times", "ratio_peer_over_refode", "gflops"):
        row[key] = {rename[k]: v for k, v in row.get(key, {}).items()}
    cpu_libraries = ["pytorch"] if torch is not None and not on_gpu else []
    reference = build(builder, dtype, size, "cpu", cpu_libraries, "cpu")
    for lib, name in (("refode", REFODE_CPU), ("pytorch", TORCH_CPU)):
        if lib in reference.runs:
            fn, outputs = reference.runs[lib]
            row["agreement"][name] = common.agreement(seen[REFODE], outputs(fn()), str(dtype))
    row["skipped"] = {**({TORCH_CUDA: torch_skip} if torch_skip else {}),
                      **reference.skipped}
    row["timed_on"] = {REFODE: "cuda", **({TORCH_CUDA: "cuda"} if on_gpu else {})}
    return row


def gemm(torch, dtype, n, repeats):
    """GFLOP/s of ``torch.matmul`` of two ``(n, n)`` matrices on CUDA (cuBLAS), median."""
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, dtype=dt, device="cuda")
    b = torch.randn(n, n, dtype=dt, device="cuda")
    out = torch.empty(n, n, dtype=dt, device="cuda")
    fn = synced(lambda: torch.matmul(a, b, out=out), torch.cuda.synchronize)
    median = common.alternate({"gemm": fn}, repeats)["gemm"]["median_s"]
    return {"library": "torch.matmul (cuBLAS)", "n": n, "median_s": median,
            "gflops": 2.0 * n ** 3 / median / 1e9}


def print_row(label, row, peak):
    times = row["times"]
    parts = [f"{label:<18} {REFODE} {1e3 * times[REFODE]['median_s']:9.2f} ms"]
    if TORCH_CUDA in times:
        parts.append(f"{TORCH_CUDA} {1e3 * times[TORCH_CUDA]['median_s']:9.2f} ms "
                     f"(x{row['ratio_peer_over_refode'][TORCH_CUDA]:.2f})")
    if "gflops" in row and REFODE in row["gflops"]:
        parts.append(f"{row['gflops'][REFODE]:.1f} GFLOP/s"
                     + ("" if peak is None else f" of cuBLAS {peak:.1f}"))
    parts += [f"{lib} {'agree' if a['ok'] else 'DISAGREE'} {a['worst_error']:.1e}"
              for lib, a in row["agreement"].items()]
    print("  ".join(parts), flush=True)


# --------------------------------------------------------------------------- main
def main(argv=None):
    args = parse(argv)
    started = time.perf_counter()
    pinned = common.pin_threads(args.threads)
    found = cuda_or_exit()
    if found is None:
        return 2
    cuda, simulator = found
    import numba
    import numpy as np

    from benchmarks import conv, tagger

    numba.set_num_threads(args.threads)
    torch, torch_skip = torch_cuda()
    if torch is not None:
        torch.set_num_threads(args.threads)
    hooks = all("torch_device" in inspect.signature(b).parameters
                for b in (conv.w1, conv.w4, tagger.w2))
    if torch_skip is None and not hooks:
        torch_skip = "benchmarks/conv.py and tagger.py take no torch_device yet"
    mode = "quick" if args.quick else "full"
    sizes = SIMULATOR_SIZES if simulator and args.quick else run.SIZES[mode]
    repeats = args.repeats or sizes["repeats"]
    report = {"command": " ".join([os.path.basename(sys.argv[0]), *(argv or sys.argv[1:])]),
              "mode": mode, "backend": "cuda", "repeats": repeats,
              "device": device_info(cuda, simulator),
              "simulator_settings": simulator_settings() if simulator else None,
              "threads": pinned, "machine": versions(simulator, torch),
              "rtol": common.RTOL, "skipped": {TORCH_CUDA: torch_skip} if torch_skip else {},
              "gemm": {}, "workloads": {}}
    print(f"refode GPU benchmarks ({mode}) on {report['device']['name']}, "
          f"compute capability {report['device']['compute_capability']}, {repeats} repeats",
          flush=True)
    if simulator:
        print("simulator: every CUDA thread is a Python thread; times say nothing about a GPU",
              flush=True)
    if torch_skip:
        print(f"{TORCH_CUDA}: skipped, {torch_skip}; agreement checked against "
              f"{TORCH_CPU} instead", flush=True)
    for dtype in args.dtypes:
        if torch_skip is None:
            report["gemm"][dtype] = gemm(torch, dtype, GEMM_N[mode], repeats)
    failures = []
    builders = {"W1": conv.w1, "W2": tagger.w2, "W4": conv.w4}
    for name in args.only:
        start = time.perf_counter()
        entry = {"size": sizes[name], "rows": {}}
        for dtype, scheme in [(d, s) for d in args.dtypes
                              for s in (run.W4_SCHEMES if name == "W4" else (None,))]:
            size = dict(sizes[name], **({"scheme": scheme} if scheme else {}))
            label = dtype if scheme is None else f"{dtype}/{scheme}"
            row = measure_row(builders[name], np.dtype(dtype), size, repeats, cuda, torch,
                              torch_skip)
            entry["rows"][label] = row
            print_row(f"{name} {label}", row, report["gemm"].get(dtype, {}).get("gflops"))
            failures += common.disagreements(f"{name} {label}", row["agreement"])
        entry["wall_s"] = time.perf_counter() - start
        report["workloads"][name] = entry
    return common.finish(report, failures, args.json, started)


if __name__ == "__main__":
    sys.exit(main())
