"""refode's odeint / gradient vs torchdiffeq's fixed-grid solvers.

Problem of validation/peer_ode.py: ``dh/dt = tanh(h W(t)^T + b(t))`` with weights in a
basis, evaluated by the torchdiffeq side at float times (right-continuous pieces), as a
PyTorch user would. torchdiffeq: ``odeint`` (autograd through the solver = discrete
gradient) and ``odeint_adjoint`` (continuous adjoint), ``step_size = 1/N``, with and
without ``perturb``. Solvers: euler = refode euler, midpoint = midpoint, heun2 = heun,
rk4 = refode rk4_38 (torchdiffeq's 'rk4' is the 3/8 rule).

    python validation/check_torchdiffeq.py [--quick]

Exit 1 when a row expected to agree (relative error <= 1e-11) does not, or when an
expected finding does not hold.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torchdiffeq import odeint, odeint_adjoint  # noqa: E402

from validation import peer_ode as po  # noqa: E402

#: torchdiffeq method -> the refode tableau it is.
METHODS = {"euler": "euler", "midpoint": "midpoint", "heun2": "heun", "rk4": "rk4_38"}


class Rate(torch.nn.Module):
    """``tanh(h W(t)^T + b(t))``, weights from basis coefficients at float ``t``."""

    def __init__(self, family, k, coefs):
        super().__init__()
        self.family, self.k = family, k
        self.W = torch.nn.Parameter(torch.tensor(coefs["W"]))
        self.b = torch.nn.Parameter(torch.tensor(coefs["b"]))
        self.nfe = 0

    def forward(self, t, h):
        self.nfe += 1
        idx, w = po.weights_at(self.family, self.k, float(t.detach()))
        W = sum(wi * self.W[i] for i, wi in zip(idx, w))
        b = sum(wi * self.b[i] for i, wi in zip(idx, w))
        return torch.tanh(h @ W.T + b)


def peer(family, k, coefs, h0, w, method, n, perturb=False, adjoint=False):
    """torchdiffeq's ``h(1)``, gradient triple and number of steps taken."""
    rate = Rate(family, k, coefs)
    h = torch.tensor(h0, requires_grad=True)
    solve = odeint_adjoint if adjoint else odeint
    opts = {"step_size": 1.0 / n, "perturb": perturb}
    kw = {"adjoint_options": dict(opts)} if adjoint else {}
    out = solve(rate, h, torch.tensor([0.0, 1.0], dtype=torch.float64), method=method,
                options=opts, **kw)[-1]
    steps = rate.nfe
    (out * torch.tensor(w)).sum().backward()
    grads = (h.grad.numpy(), rate.W.grad.numpy(), rate.b.grad.numpy())
    return out.detach().numpy(), grads, steps


def steps_taken(n):
    """Steps of torchdiffeq's fixed grid for ``step_size = 1/n`` on [0, 1] (float64)."""
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    return int(torch.ceil((t[-1] - t[0]) / (1.0 / n) + 1).item()) - 1


def agreement(table, quick):
    fams = [("legendre", 3)] if quick else [("fem_linear", 3), ("legendre", 3), ("fourier", 3)]
    for fam, k in fams:
        basis, coefs, h0, w = po.problem(fam, k)
        for method, scheme in METHODS.items():
            for n in ((4,) if quick else (4, 7)):
                ref_h, ref_g = po.refode_run(basis, coefs, h0, w, scheme, n)
                for perturb in (False, True):
                    h, g, _ = peer(fam, k, coefs, h0, w, method, n, perturb)
                    err = max(po.rel(h, ref_h), po.grad_rel(g, ref_g))
                    table.add("continuous", f"{fam} K={k} {method}={scheme} N={n} "
                              f"perturb={int(perturb)}", "h(1) and gradient rel err", err,
                              "agree", err <= po.AGREE)


def rk4_rule(table):
    basis, coefs, h0, w = po.problem("legendre", 3)
    h, _, _ = peer("legendre", 3, coefs, h0, w, "rk4", 4)
    e38 = po.rel(h, po.refode_run(basis, coefs, h0, w, "rk4_38", 4)[0])
    e4 = po.rel(h, po.refode_run(basis, coefs, h0, w, "rk4", 4)[0])
    table.add("rk4 rule", "legendre K=3 N=4 torchdiffeq 'rk4'", "rel diff to refode rk4_38",
              e38, "agree (3/8 rule)", e38 <= po.AGREE)
    table.add("rk4 rule", "legendre K=3 N=4 torchdiffeq 'rk4'", "rel diff to refode rk4",
              e4, "differ (not classic)", e4 > 1e3 * po.AGREE)


def piecewise(table, quick):
    k = 4
    basis, coefs, h0, w = po.problem("piecewise_constant", k)
    for n in ((8, 3) if quick else (4, 8, 3, 6)):
        kind = po.alignment(n, k)
        aligned = kind != "unaligned"  # some step ends on a breakpoint
        for method, scheme in METHODS.items():
            ref_h, ref_g = po.refode_run(basis, coefs, h0, w, scheme, n)
            for perturb in (False, True):
                h, g, _ = peer("piecewise_constant", k, coefs, h0, w, method, n, perturb)
                err = max(po.rel(h, ref_h), po.grad_rel(g, ref_g))
                ends_on_break = aligned and scheme in ("heun", "rk4_38")
                if perturb or not ends_on_break:
                    expect, ok = "agree", err <= po.AGREE
                else:
                    expect, ok = "differ (right limit)", err > 1e3 * po.AGREE
                table.add("pw-const", f"K=4 {method}={scheme} N={n} "
                          f"{kind} perturb={int(perturb)}",
                          "h(1) and gradient rel err", err, expect, ok)


def convergence(table, quick):
    k = 4
    basis, coefs, h0, w = po.problem("piecewise_constant", k)
    exact = po.refode_run(basis, coefs, h0, w, "rk4", 2048)[0]
    sets = {"aligned": (4, 8, 16, 32) if quick else (4, 8, 16, 32, 64, 128),
            "unaligned": (5, 11, 21, 41) if quick else (5, 11, 21, 41, 81, 161)}
    for kind, ns in sets.items():
        runs = {
            "refode rk4_38": lambda n: po.refode_run(basis, coefs, h0, w, "rk4_38", n)[0],
            "torchdiffeq rk4": lambda n: peer("piecewise_constant", k, coefs, h0, w, "rk4", n)[0],
            "torchdiffeq rk4 perturb": lambda n: peer("piecewise_constant", k, coefs, h0, w,
                                                      "rk4", n, True)[0],
        }
        for name, run in runs.items():
            errs = [po.rel(run(n), exact) for n in ns]
            p = po.order(errs, ns)[-1]
            if kind == "aligned" and name == "torchdiffeq rk4":
                expect, ok = "~1 (first order)", p < 1.5
            elif kind == "aligned":
                expect, ok = "~4", p > 3.0
            else:
                expect, ok = "~1 (straddling steps)", p < 1.5
            table.add("order", f"pw-const K=4 {kind} N={ns[0]}..{ns[-1]} {name}",
                      f"order (err at N={ns[-1]}: {errs[-1]:.1e})", p, expect, ok)


def grid_steps(table):
    extra = [n for n in range(1, 201) if steps_taken(n) != n]
    table.add("grid", "step_size = 1/49", "steps taken", str(steps_taken(49)), "50 = N + 1",
              steps_taken(49) == 50)
    table.add("grid", "N in 1..200 taking N + 1 steps", "count", str(len(extra)), "info")
    print("torchdiffeq takes N + 1 steps for step_size = 1/N, N in:", extra)


def adjoints(table, quick):
    fam, k = "legendre", 3
    basis, coefs, h0, w = po.problem(fam, k)
    ns = (16, 32, 64) if quick else (8, 16, 32, 64, 128)
    for method, scheme in (("euler", "euler"), ("rk4", "rk4_38")):
        diffs = []
        for n in ns:
            _, ref_g = po.refode_run(basis, coefs, h0, w, scheme, n)
            _, cont_g = po.refode_run(basis, coefs, h0, w, scheme, n, "continuous")
            _, g, _ = peer(fam, k, coefs, h0, w, method, n, adjoint=True)
            diffs.append(po.grad_rel(g, ref_g))
            e = po.grad_rel(g, cont_g)
            table.add("adjoint", f"{fam} K=3 {method}={scheme} N={n} odeint_adjoint",
                      "rel diff to refode continuous", e, "info")
        p = po.fit_order(diffs, ns)
        want = 1 if scheme == "euler" else 4
        table.add("adjoint", f"{fam} K=3 {method}={scheme} N={ns[0]}..{ns[-1]}",
                  f"fitted order of diff to discrete ({diffs[-1]:.1e})", p, f"~{want}",
                  abs(p - want) < 0.75)
    basis, coefs, h0, w = po.problem("piecewise_constant", 4)
    _, ref_g = po.refode_run(basis, coefs, h0, w, "rk4_38", 8)
    for perturb in (False, True):
        _, g, _ = peer("piecewise_constant", 4, coefs, h0, w, "rk4", 8, perturb, adjoint=True)
        table.add("adjoint", f"pw-const K=4 rk4=rk4_38 N=8 aligned perturb={int(perturb)}",
                  "rel diff to refode discrete", po.grad_rel(g, ref_g), "info")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset (CI)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    table = po.Table("refode vs torchdiffeq (fixed grid, float64)")
    agreement(table, args.quick)
    rk4_rule(table)
    piecewise(table, args.quick)
    convergence(table, args.quick)
    grid_steps(table)
    adjoints(table, args.quick)
    return table.finish()


if __name__ == "__main__":
    sys.exit(main())
