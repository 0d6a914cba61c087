"""refode's odeint / gradient vs diffrax (constant step size).

Problem of validation/peer_ode.py: ``dh/dt = tanh(h W(t)^T + b(t))`` with weights in a
basis, which the diffrax side evaluates at (traced) float times with right-continuous
pieces, as a JAX user would. diffrax: ``diffeqsolve`` with ``ConstantStepSize``,
``dt0 = 1/N``, gradients by ``RecursiveCheckpointAdjoint`` (autodiff through the solver =
discrete gradient) and ``BacksolveAdjoint`` (continuous adjoint). Solvers: Euler,
Midpoint, Heun, Ralston, and classic RK4 / RK4 3/8 written as ``AbstractERK`` tableaus.

    python validation/check_diffrax.py [--quick]

Exit 1 when a row expected to agree (relative error <= 1e-11) does not, or when an
expected finding does not hold.
"""
import argparse
import os
import sys
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from validation import peer_ode as po  # noqa: E402


def _erk(name, c, b, a, order):
    tab = dfx.ButcherTableau(c=np.array(c, float), b_sol=np.array(b, float),
                             b_error=np.zeros(len(b)),
                             a_lower=tuple(np.array(r, float) for r in a))
    return type(name, (dfx.AbstractERK,), {
        "__annotations__": {"tableau": ClassVar[dfx.ButcherTableau],
                            "interpolation_cls": ClassVar[object]},
        "tableau": tab,
        "interpolation_cls": dfx.ThirdOrderHermitePolynomialInterpolation.from_k,
        "order": lambda self, terms: order})


RK4 = _erk("RK4", [0.5, 0.5, 1.0], [1 / 6, 1 / 3, 1 / 3, 1 / 6],
           [[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], 4)
RK4_38 = _erk("RK4_38", [1 / 3, 2 / 3, 1.0], [1 / 8, 3 / 8, 3 / 8, 1 / 8],
              [[1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]], 4)
#: diffrax solver -> refode tableau.
SOLVERS = {"Euler": (dfx.Euler, "euler"), "Midpoint": (dfx.Midpoint, "midpoint"),
           "Heun": (dfx.Heun, "heun"), "Ralston": (dfx.Ralston, "ralston"),
           "RK4": (RK4, "rk4"), "RK4_38": (RK4_38, "rk4_38")}


def phi(family, k, t):
    """Basis values ``(K,)`` at float (traced) ``t`` in [0, 1], right-continuous pieces."""
    if family == "piecewise_constant":
        return jax.nn.one_hot(jnp.clip(jnp.floor(k * t), 0, k - 1).astype(int), k)
    if family == "fem_linear":
        p = jnp.clip(jnp.floor((k - 1) * t), 0, k - 2).astype(int)
        xi = (k - 1) * t - p
        return jax.nn.one_hot(p, k) * (1 - xi) + jax.nn.one_hot(p + 1, k) * xi
    if family == "legendre":
        s = 2 * t - 1
        vals = [jnp.ones_like(s), s]
        for j in range(1, k - 1):
            vals.append(((2 * j + 1) * s * vals[-1] - j * vals[-2]) / (j + 1))
        return jnp.stack([jnp.sqrt(2.0 * j + 1.0) * v for j, v in enumerate(vals[:k])])
    if family == "fourier":
        vals = [jnp.ones_like(t)]
        for m in range(1, (k - 1) // 2 + 1):
            vals += [jnp.cos(2 * jnp.pi * m * t), jnp.sin(2 * jnp.pi * m * t)]
        return jnp.stack(vals)
    raise ValueError(family)


def peer(family, k, coefs, h0, w, solver, n, adjoint="recursive"):
    """diffrax's ``h(1)``, gradient triple and number of steps."""
    term = dfx.ODETerm(lambda t, y, args: jnp.tanh(
        y @ jnp.tensordot(phi(family, k, t), args[0], 1).T
        + jnp.tensordot(phi(family, k, t), args[1], 1)))
    adj = dfx.RecursiveCheckpointAdjoint() if adjoint == "recursive" else dfx.BacksolveAdjoint()

    def run(args, y0):
        sol = dfx.diffeqsolve(term, SOLVERS[solver][0](), 0.0, 1.0, 1.0 / n, y0, args=args,
                              stepsize_controller=dfx.ConstantStepSize(), adjoint=adj,
                              saveat=dfx.SaveAt(t1=True), max_steps=4 * n + 16)
        return sol.ys[-1], sol.stats["num_steps"]

    args = (jnp.asarray(coefs["W"]), jnp.asarray(coefs["b"]))
    y0 = jnp.asarray(h0)

    def loss(a, y):
        h1, steps = run(a, y)
        return jnp.sum(h1 * jnp.asarray(w)), (h1, steps)

    (_, (h1, steps)), (ga, gy) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        args, y0)
    return np.asarray(h1), (np.asarray(gy), np.asarray(ga[0]), np.asarray(ga[1])), int(steps)


def agreement(table, quick):
    fams = [("legendre", 3)] if quick else [("fem_linear", 3), ("legendre", 3), ("fourier", 3)]
    solvers = ("RK4",) if quick else tuple(SOLVERS)
    for fam, k in fams:
        basis, coefs, h0, w = po.problem(fam, k)
        for solver in solvers:
            scheme = SOLVERS[solver][1]
            for n in ((4,) if quick else (4, 7)):
                ref_h, ref_g = po.refode_run(basis, coefs, h0, w, scheme, n)
                h, g, steps = peer(fam, k, coefs, h0, w, solver, n)
                err = max(po.rel(h, ref_h), po.grad_rel(g, ref_g))
                table.add("continuous", f"{fam} K={k} {solver}={scheme} N={n} recursive",
                          "h(1) and gradient rel err", err, "agree",
                          err <= po.AGREE and steps == n)


def piecewise(table, quick):
    k = 4
    basis, coefs, h0, w = po.problem("piecewise_constant", k)
    solvers = ("Euler", "RK4") if quick else tuple(SOLVERS)
    for n in ((8,) if quick else (4, 8, 3, 6)):
        kind = po.alignment(n, k)
        aligned = kind != "unaligned"  # some step ends on a breakpoint
        for solver in solvers:
            scheme = SOLVERS[solver][1]
            ref_h, ref_g = po.refode_run(basis, coefs, h0, w, scheme, n)
            h, g, _ = peer("piecewise_constant", k, coefs, h0, w, solver, n)
            err = max(po.rel(h, ref_h), po.grad_rel(g, ref_g))
            if aligned and scheme in ("heun", "rk4", "rk4_38"):
                expect, ok = "differ (right limit)", err > 1e3 * po.AGREE
            else:
                expect, ok = "agree", err <= po.AGREE
            table.add("pw-const", f"K=4 {solver}={scheme} N={n} "
                      f"{kind}", "h(1) and gradient rel err",
                      err, expect, ok)


def convergence(table, quick):
    k = 4
    basis, coefs, h0, w = po.problem("piecewise_constant", k)
    exact = po.refode_run(basis, coefs, h0, w, "rk4", 2048)[0]
    ns = (8, 16, 32) if quick else (4, 8, 16, 32, 64, 128)
    for name, run in (("refode rk4", lambda n: po.refode_run(basis, coefs, h0, w, "rk4", n)[0]),
                      ("diffrax RK4", lambda n: peer("piecewise_constant", k, coefs, h0, w,
                                                     "RK4", n)[0])):
        errs = [po.rel(run(n), exact) for n in ns]
        p = po.order(errs, ns)[-1]
        expect, ok = ("~1 (first order)", p < 1.5) if "diffrax" in name else ("~4", p > 3.0)
        table.add("order", f"pw-const K=4 aligned N={ns[0]}..{ns[-1]} {name}",
                  f"order (err at N={ns[-1]}: {errs[-1]:.1e})", p, expect, ok)


def steps(table, quick):
    basis, coefs, h0, w = po.problem("legendre", 3)
    for n in ((49,) if quick else (7, 49, 98)):
        _, _, taken = peer("legendre", 3, coefs, h0, w, "Euler", n)
        table.add("grid", f"dt0 = 1/{n}", "steps taken", str(taken), f"{n} = N", taken == n)


def adjoints(table, quick):
    fam, k = "legendre", 3
    basis, coefs, h0, w = po.problem(fam, k)
    ns = (16, 32, 64) if quick else (8, 16, 32, 64, 128)
    for solver in (("RK4",) if quick else ("Euler", "RK4")):
        scheme = SOLVERS[solver][1]
        diffs = []
        for n in ns:
            _, ref_g = po.refode_run(basis, coefs, h0, w, scheme, n)
            _, cont_g = po.refode_run(basis, coefs, h0, w, scheme, n, "continuous")
            _, g, _ = peer(fam, k, coefs, h0, w, solver, n, adjoint="backsolve")
            diffs.append(po.grad_rel(g, ref_g))
            table.add("adjoint", f"{fam} K=3 {solver}={scheme} N={n} BacksolveAdjoint",
                      "rel diff to refode continuous", po.grad_rel(g, cont_g), "info")
        p = po.fit_order(diffs, ns)
        want = 1 if scheme == "euler" else 4
        table.add("adjoint", f"{fam} K=3 {solver}={scheme} N={ns[0]}..{ns[-1]}",
                  f"fitted order of diff to discrete ({diffs[-1]:.1e})", p, f"~{want}",
                  abs(p - want) < 0.75)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset (CI)")
    args = parser.parse_args(argv)
    table = po.Table("refode vs diffrax (ConstantStepSize, float64)")
    agreement(table, args.quick)
    piecewise(table, args.quick)
    convergence(table, args.quick)
    steps(table, args.quick)
    adjoints(table, args.quick)
    return table.finish()


if __name__ == "__main__":
    sys.exit(main())
