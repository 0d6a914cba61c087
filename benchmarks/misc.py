"""W3 (projection against a copy of the same bytes) and C1 (cold start in a fresh process)."""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .common import alternate, relative_error


def w3(dtype, size, backend, repeats):
    """``refode.project`` of ``(16, P)`` coefficients from 16 to 8 equal pieces
    (piecewise constant) against ``numpy.copyto`` of the same ``16 P`` values.

    The projection onto coarser equal pieces is the mean of each pair of fine pieces;
    the check compares refode's result with that formula (float64 rtol 1e-12).
    """
    import refode

    p = size["parameters"]
    fine, coarse = refode.basis("piecewise_constant", 16), refode.basis("piecewise_constant", 8)
    coefs = np.random.default_rng(4).standard_normal((16, p)).astype(dtype)
    dst = np.empty_like(coefs)
    out = refode.project(coefs, fine, coarse, backend=backend)
    expected = 0.5 * (coefs[0::2].astype(np.float64) + coefs[1::2])
    error = relative_error(expected, out)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    times = alternate({"refode": lambda: refode.project(coefs, fine, coarse, backend=backend),
                       "copy": lambda: np.copyto(dst, coefs)}, repeats)
    moved = coefs.nbytes + out.nbytes
    return {"size": size, "bytes_in": coefs.nbytes, "bytes_out": out.nbytes,
            "times": times,
            "ratio_project_to_copy": times["refode"]["median_s"] / times["copy"]["median_s"],
            "project_GBps": moved / times["refode"]["median_s"] / 1e9,
            "copy_GBps": 2 * coefs.nbytes / times["copy"]["median_s"] / 1e9,
            "agreement": {"pair_mean": {"ok": error <= rtol, "rtol": rtol,
                                        "worst_error": error}},
            "target": "project <= 2x copy"}


#: what the child process of C1 runs: import, first training step of a small
#: ContinuousNet and of a small tagger, then one more of each (compiled).
C1_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import refode
from refode.models import ContinuousNet, ContinuousTagger
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
net = ContinuousNet(in_channels=3, n_classes=10, widths=(4, 8), n_basis=2, n_steps=2)
x, y = rng.standard_normal((4, 3, 8, 8)), np.arange(4) % 10
tag = ContinuousTagger(vocab_size=16, n_tags=4, width=8, heads=2, ffn=16, n_basis=2,
                       scheme="rk4", n_steps=2)
ids = rng.integers(1, 16, (2, 5)); tags = rng.integers(0, 4, (2, 5))
out = {"import_s": t_import}
for label in ("first", "second"):
    t = time.perf_counter(); net.loss_and_gradients(x, y); net.forward(x, train=False)
    out[f"{label}_conv_s"] = time.perf_counter() - t
    t = time.perf_counter(); tag.loss_and_gradients(ids, tags)
    out[f"{label}_tagger_s"] = time.perf_counter() - t
out["total_s"] = time.perf_counter() - t0
print("C1JSON" + json.dumps(out))
"""


def _child(env):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", C1_CHILD], env=env, capture_output=True,
                          text=True, timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"C1 child failed:\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("C1JSON")][-1]
    return {**json.loads(line[len("C1JSON"):]), "process_wall_s": wall}


def c1():
    """Cold start: a fresh interpreter with ``REFODE_CACHE=1`` and an empty
    ``NUMBA_CACHE_DIR`` (everything compiled), then again with the cache it filled,
    and once with the default ``REFODE_CACHE=0`` for comparison."""
    with tempfile.TemporaryDirectory(prefix="refode-c1-") as cache:
        env = {**os.environ, "REFODE_CACHE": "1", "NUMBA_CACHE_DIR": cache}
        cold = _child(env)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(cache)
                   for f in fs)
        warm = _child(env)
    default = _child({**os.environ, "REFODE_CACHE": "0"})
    return {"cache_empty": cold, "cache_filled": warm, "cache_off": default,
            "cache_bytes": size,
            "first_call_s": {"cache_empty": cold["total_s"], "cache_filled": warm["total_s"],
                             "cache_off": default["total_s"]},
            "target": "cache empty <= 20 s, cache filled <= 3 s"}
