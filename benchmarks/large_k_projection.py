"""Benchmark: compression onto K = 2048 and 4096 basis functions (``refode compress``).

Times, from a cold cache, the exact L2 projection of a small ContinuousNet (widths 4, 8;
K = 2) onto ``--n-basis`` functions of each family: mass matrices, projection operator,
the moved weights and statistics, and the L2 error ``refode compress`` prints. Before
the mass matrices were assembled block by block this took 48 s at K = 2048 (every
subinterval added a dense K x K product); the target is seconds. As a peer, the dense
assembly (the former algorithm) of the same mass matrix is timed at ``--peer-k`` and
its result compared with refode's.

Run: ``python benchmarks/large_k_projection.py [--n-basis 2048 4096] [--peer-k 1024]``.
"""
import argparse
import pathlib
import sys
import time

import numpy as np
from numpy.polynomial import legendre as npleg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
import refode  # noqa: E402
from refode.io.summary import depth_dependent, relative_l2_error  # noqa: E402
from refode.integrate.grid import stage_grid  # noqa: E402
from refode.projection.project import projection_operator  # noqa: E402

#: the module (``refode.projection.mass`` is also the name of its function).
MASS = sys.modules["refode.projection.mass"]
#: families timed, and the default sizes.
FAMILIES = ("piecewise_constant", "fem_linear", "piecewise_linear", "legendre")
DEFAULT_SIZES = (2048, 4096)
#: K of the dense peer (the former assembly is O(K^3): 48 s at 2048).
DEFAULT_PEER_K = 1024
#: largest relative difference allowed between the peer's and refode's mass matrix.
PEER_RTOL = 1e-13


def _cold():
    """Empty every cache a compression fills (mass matrices, operators, grids)."""
    MASS._mass_cached.cache_clear()
    projection_operator.cache_clear()
    stage_grid.cache_clear()


def compress(model, family, k):
    """Seconds of ``rediscretize`` + the L2 errors, as ``refode compress`` runs them."""
    _cold()
    start = time.perf_counter()
    new = model.rediscretize(basis=family, n_basis=k)
    after = depth_dependent(new)
    for block, arrays in depth_dependent(model).items():
        relative_l2_error(arrays, model.basis, after[block], new.basis)
    return time.perf_counter() - start


def dense_mass(basis):
    """The former assembly: a dense ``K x K`` product added per subinterval."""
    g, w = npleg.leggauss(MASS.gauss_points(basis, basis))
    nodes, weights = 0.5 * (g + 1.0), 0.5 * w
    out = np.zeros((basis.n, basis.n))
    edges = MASS.union_breakpoints(basis, basis)
    for p, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        xi = nodes   # every subinterval is a whole piece of the basis itself
        v = basis._eval_piece(p, xi)
        out += (v * (weights * float(hi - lo))[:, None]).T @ v
    return out * basis.length


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-basis", nargs="+", type=int, default=list(DEFAULT_SIZES))
    parser.add_argument("--peer-k", type=int, default=DEFAULT_PEER_K)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    args = parser.parse_args(argv)
    model = refode.models.ContinuousNet(in_channels=1, n_classes=3, widths=(4, 8), n_basis=2,
                                        n_steps=2, seed=1)
    compress(model, "piecewise_constant", 1024)   # compile the kernels outside the timings
    print(f"{'family':<20} {'K':>5} {'compress (s)':>13}")
    for family in args.families:
        for k in args.n_basis:
            print(f"{family:<20} {k:>5} {compress(model, family, k):>13.2f}", flush=True)
    basis = refode.basis("fem_linear", args.peer_k)
    _cold()
    start = time.perf_counter()
    fast = refode.mass(basis)
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    dense = dense_mass(basis)
    t_dense = time.perf_counter() - start
    diff = float(np.abs(fast - dense).max() / np.abs(dense).max())
    print(f"mass matrix fem_linear K={args.peer_k}: refode {t_fast:.3f} s, dense peer "
          f"{t_dense:.3f} s (ratio {t_dense / t_fast:.0f}x), max relative difference "
          f"{diff:.1e}")
    return 0 if diff <= PEER_RTOL else 1


if __name__ == "__main__":
    sys.exit(main())
