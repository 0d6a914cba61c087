"""Shared pieces of the benchmark harness: thread pinning, timing, agreement, GEMM, FLOPs.

:func:`pin_threads` must run before numpy, numba, torch or jax are imported
(``benchmarks/run.py`` calls it first); everything else here imports numpy lazily.
"""
import json
import os
import platform
import sys
import time

#: relative agreement required between refode and a peer, per dtype: the largest absolute
#: difference of an array divided by the largest absolute value of refode's array.
RTOL = {"float64": 1e-10, "float32": 2e-3}

#: environment variables that size the thread pools of BLAS, OpenMP and Numba.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def pin_threads(threads):
    """Ask every library for ``threads`` threads; call before importing any of them.

    Sets the BLAS/OpenMP/Numba variables of :data:`THREAD_VARIABLES`, restricts the
    process to the first ``threads`` CPUs it may run on (so XLA, which sizes its pool
    from the CPUs it sees, gets ``threads`` too), sets ``OMP_WAIT_POLICY=PASSIVE`` and
    ``OPENBLAS_THREAD_TIMEOUT=4`` unless set (refode's own defaults, here applied before
    PyTorch loads its OpenMP and NumPy its OpenBLAS: no library's idle threads spin) and adds
    ``--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=<threads>`` to
    ``XLA_FLAGS``. Returns what was set (recorded in the JSON).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # refode sets this default on import; set it here so that PyTorch's OpenMP runtime,
    # loaded before refode, sleeps between parallel regions too (same rule for all)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        flags = (f"{flags} --xla_cpu_multi_thread_eigen=true "
                 f"intra_op_parallelism_threads={threads}").strip()
    os.environ["XLA_FLAGS"] = flags
    affinity = None
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > threads:
            os.sched_setaffinity(0, cpus[:threads])
        affinity = sorted(os.sched_getaffinity(0))
    return {**{name: os.environ[name] for name in THREAD_VARIABLES},
            "XLA_FLAGS": flags, "affinity": affinity,
            "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"],
            "OPENBLAS_THREAD_TIMEOUT": os.environ["OPENBLAS_THREAD_TIMEOUT"]}


def block(value):
    """Wait for asynchronous results (JAX arrays) inside a timed call."""
    leaves = value if isinstance(value, (tuple, list)) else (value,)
    for leaf in leaves:
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
        elif isinstance(leaf, dict):
            block(list(leaf.values()))
        elif isinstance(leaf, (tuple, list)):
            block(leaf)
    return value


def alternate(fns, repeats):
    """Median seconds of each callable of ``{name: fn}``, timed in alternation.

    Every callable runs once untimed (warm-up: allocator, caches), then the repeats go
    ``a, b, c, a, b, c, ...`` so that a change of machine load hits every library alike.
    Returns ``{name: {"median_s", "min_s", "times_s"}}``.
    """
    import numpy as np

    for fn in fns.values():
        block(fn())
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            block(fn())
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": float(np.median(t)), "min_s": float(np.min(t)),
                   "times_s": [float(v) for v in t]} for name, t in times.items()}


#: how arrays are compared per dtype: the largest entry (float64), or the 2-norm (float32).
#: A float32 gradient through ReLUs and batch norm is not close entry by entry: a
#: pre-activation within float32 round-off of 0 takes the other side of the kink in one
#: library, which changes a few hundred entries of the input gradient by O(1) (seen in
#: W1 at full size: refode and PyTorch each flip different elements, max-wise 3.6e-2
#: against refode's float64 result, norm-wise 5e-4). The norm keeps the check meaningful
#: (a wrong kernel is off everywhere) without failing on the kinks.
METRIC = {"float64": "max", "float32": "norm"}


def relative_error(ref, other, metric="max"):
    """``max |ref - other| / max |ref|`` (``metric="max"``) or ``|ref - other|_2 / |ref|_2``
    (``"norm"``), the denominator floored at the smallest normal."""
    import numpy as np

    ref = np.asarray(ref, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if ref.shape != other.shape:
        return float("inf")
    if metric == "norm":
        scale = max(float(np.linalg.norm(ref)), np.finfo(np.float64).tiny)
        return float(np.linalg.norm(ref - other) / scale)
    scale = max(float(np.abs(ref).max(initial=0.0)), np.finfo(np.float64).tiny)
    return float(np.abs(ref - other).max(initial=0.0) / scale)


def agreement(ref, other, dtype):
    """Compare two ``{name: array}`` of one computation.

    Returns ``{"ok", "rtol", "metric", "worst", "worst_error", "errors"}`` (``metric``:
    :data:`METRIC` of ``dtype``); a name missing on
    either side counts as a disagreement (a peer that computes nothing cannot agree).
    """
    rtol = RTOL[dtype]
    errors = {}
    for name in sorted(set(ref) | set(other)):
        if name not in ref or name not in other:
            errors[name] = float("inf")
        else:
            errors[name] = relative_error(ref[name], other[name], METRIC[dtype])
    worst = max(errors, key=errors.get) if errors else None
    worst_error = errors[worst] if worst else float("inf")
    return {"ok": bool(errors) and worst_error <= rtol, "rtol": rtol, "metric": METRIC[dtype],
            "worst": worst,
            "worst_error": worst_error, "errors": errors}


def disagreements(label, agreements):
    """One failure line per library of ``{library: agreement}`` that disagrees."""
    return [f"{label} {lib}: {a['worst']} off by {a['worst_error']:.2e} > {a['rtol']:.0e}"
            for lib, a in agreements.items() if not a["ok"]]


def finish(report, failures, path, started):
    """Record ``failures`` and the wall time since ``started`` in ``report``, write it to
    ``path`` as JSON (if given), print the failures on stderr and a last line; returns
    the exit status (1 if any failure)."""
    report["failures"] = failures
    report["wall_s"] = time.perf_counter() - started
    if path:
        with open(path, "w") as fh:
            json.dump(report, fh, indent=1, default=float)
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    print(f"done in {report['wall_s']:.1f} s; {len(failures)} failure(s)", flush=True)
    return 1 if failures else 0


def block_run(block, x, w, names):
    """refode's run of an ODE-block workload: ``(step, arrays)`` for ``Case.runs``.

    ``step()`` is a training-mode forward of ``x`` and the VJP of ``sum(w * h(T))``;
    ``arrays(result)`` names the output ``h``, the input gradient ``dx`` and the
    coefficient gradients ``d[name]`` for every name of ``names``.
    """
    def step():
        h, cache = block.forward(x, True)
        dx, grads = block.backward(cache, w)
        return h, dx, grads

    return step, lambda r: {"h": r[0], "dx": r[1], **{f"d[{m}]": r[2][m] for m in names}}


def gemm_gflops(n, dtype, repeats):
    """GFLOP/s of ``numpy.matmul`` of two ``(n, n)`` matrices (``2 n^3`` FLOPs), median."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    timing = alternate({"gemm": lambda: np.matmul(a, b, out=out)}, repeats)["gemm"]
    return {"n": n, "median_s": timing["median_s"],
            "gflops": 2.0 * n ** 3 / timing["median_s"] / 1e9}


# --------------------------------------------------------------------------- FLOPs
def conv_flops(batch, h_out, w_out, c_in, c_out, k):
    """Multiply-adds x 2 of a bias-free ``k x k`` convolution: ``2 B Ho Wo Cin Cout k^2``."""
    return 2 * batch * h_out * w_out * c_in * c_out * k * k


def encoder_stage_flops(batch, length, width, ffn):
    """FLOPs of one encoder-rate evaluation: the four ``D x D`` projections
    (``4 * 2 B L D^2``), scores and context (``2 * 2 B L^2 D``, summed over heads) and
    the MLP (``2 * 2 B L D F``); layer norms, softmax and ELU are not counted."""
    return (8 * batch * length * width ** 2 + 4 * batch * length ** 2 * width
            + 4 * batch * length * width * ffn)


#: a reverse pass costs two products per forward product (the input's and the
#: weights' cotangents), so forward + gradient counts 3x the forward's FLOPs;
#: recomputation by checkpointing is not counted (useful FLOPs only).
GRADIENT_FACTOR = 3


def stages(scheme):
    """Stages per step of the schemes used here."""
    return {"euler": 1, "midpoint": 2, "rk4": 4}[scheme]


# --------------------------------------------------------------------------- machine
def machine():
    """Machine, Python and library versions, and what the thread pools report."""
    import numpy as np

    info = {"platform": platform.platform(), "processor": platform.processor(),
            "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        info["cpu_model"] = None
    for module in ("numba", "torch", "jax", "jaxlib", "threadpoolctl", "refode"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    import refode.config

    # refode's import tunes glibc's malloc for the whole process, the peers included
    info["malloc_tuned"] = refode.config.MALLOC_TUNED
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{k: p.get(k) for k in ("user_api", "internal_api",
                                                       "num_threads", "version")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    return info
