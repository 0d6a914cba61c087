"""Benchmark: piecewise-constant 16 -> 8 projection of a large coefficient array vs ``np.copy``.

The projection reads the source once and writes half of it, so it should cost about
what a copy costs (memory bound); the target is ``projection / copy <= 2``.

Run: ``python benchmarks/projection.py [--width 10000000] [--repeat 5]``.
"""
import argparse
import os
import pathlib
import sys
import time

import numba
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
import refode  # noqa: E402

#: number of source pieces and of target pieces.
SOURCE_PIECES, TARGET_PIECES = 16, 8
#: trailing width of the coefficient array (16 x 10M float64 is 1.28 GB).
DEFAULT_WIDTH = 10_000_000
#: timed repetitions; the best is reported.
DEFAULT_REPEAT = 5
#: ratio projection / copy the benchmark aims at.
TARGET_RATIO = 2.0


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def best_of(fns, repeat):
    """Best wall time of ``repeat`` calls of each of ``fns`` (seconds), interleaved so
    that every function sees the same machine load."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, t in zip(fns, times):
            t.append(_timed(fn))
    return [min(t) for t in times]


def run(dtype, width, repeat):
    """Time projection and copy for one dtype; returns ``(t_project, t_copy)``."""
    rng = np.random.default_rng(0)
    src = rng.standard_normal((SOURCE_PIECES, width)).astype(dtype)
    source = refode.basis("piecewise_constant", SOURCE_PIECES)
    target = refode.basis("piecewise_constant", TARGET_PIECES)

    def project():
        return refode.project(src, source, target)

    warm = project()  # compiles the kernel and builds the cached operator
    np.testing.assert_array_equal(warm[:, :1000], (0.5 * src[0::2, :1000].astype(np.float64)
                                                   + 0.5 * src[1::2, :1000]).astype(dtype))
    del warm
    return best_of([project, lambda: np.copy(src)], repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    args = parser.parse_args()
    print(f"numba threads: {numba.get_num_threads()}, "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for dtype in (np.float64, np.float32):
        t_proj, t_copy = run(dtype, args.width, args.repeat)
        ratio = t_proj / t_copy
        verdict = "ok" if ratio <= TARGET_RATIO else f"above target {TARGET_RATIO}"
        print(f"{np.dtype(dtype).name}: {SOURCE_PIECES} x {args.width} "
              f"project {SOURCE_PIECES}->{TARGET_PIECES}: {t_proj * 1e3:.1f} ms, "
              f"np.copy: {t_copy * 1e3:.1f} ms, ratio {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
