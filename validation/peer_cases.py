"""Shared harness of validation/check_torch.py and check_jax.py (numpy + refode only).

A *case* is a small refode model (random parameters, perturbed batch-norm parameters and
running statistics, so a swapped name cannot pass) plus a batch; :func:`reference` gives
refode's golden arrays (``refode.io.golden.compute``) and the running statistics after
one training step; :func:`errors` compares a peer's arrays with them; :func:`report`
prints the table and returns the exit code.
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from refode.io.golden import compute  # noqa: E402
from refode.models import ContinuousNet, ContinuousTagger  # noqa: E402

#: golden names of the running statistics after a training step.
STATE = "outputs/state"
#: relative error (max |peer - refode| / max |refode|, per array) a row must meet.
TOLERANCE = {"float64": 1e-10, "float32": 2e-3}
#: a gradient array is compared relative to its largest element, or to this fraction of
#: the case's largest gradient element if that is larger: some gradients vanish in exact
#: arithmetic (a per-channel shift before a training-mode batch norm has no effect, e.g.
#: ``stitch2.shortcut.bn.beta``) and hold round-off only.
GRADIENT_FLOOR = 1e-3
#: a valid size of every family.
FAMILY_K = {"piecewise_constant": 3, "piecewise_linear": 4, "fem_linear": 3,
            "poly_linear": 2, "legendre": 3, "chebyshev": 3, "fourier": 3}
SCHEMES = ("euler", "midpoint", "heun", "ralston", "kutta3", "ssprk3", "rk4", "rk4_38")
#: architecture options, cycled over the ContinuousNet cases.
NET_OPTIONS = ({}, {"head_activation": "relu"},
               {"padding": "same", "rate_scale": 0.7, "stitch_scale": 0.25},
               {"padding": "same", "head_activation": "relu", "rate_scale": 1.5})
#: tagger options, cycled over the tagger cases.
TAGGER_OPTIONS = ({"rate": "paper"}, {"rate": "pre_ln", "attention_bias": True},
                  {"rate": "paper", "attention_bias": True, "ln_eps": 1e-6})
#: the --quick subset (CI): (model, basis, scheme, N, dtype); the options cycle with the row.
QUICK = (("ContinuousNet", "piecewise_constant", "rk4", 2, "float64"),
         ("ContinuousNet", "fem_linear", "midpoint", 3, "float32"),
         ("ContinuousNet", "legendre", "rk4_38", 2, "float64"),
         ("ContinuousNet", "piecewise_linear", "heun", 2, "float64"),
         ("ContinuousTagger", "fourier", "rk4", 2, "float64"),
         ("ContinuousTagger", "chebyshev", "ssprk3", 2, "float32"),
         ("ContinuousTagger", "poly_linear", "kutta3", 1, "float64"))
NET_SHAPE = dict(in_channels=2, n_classes=3, widths=(3, 4))
TAGGER_SHAPE = dict(vocab_size=11, n_tags=4, width=4, heads=2, ffn=5)
TAGGER_INTERVAL = (0.5, 2.0)


def cases(quick, subset=None):
    """``(family, basis, K, scheme, N, dtype, option index)`` of the runs.

    ``subset``: indices into :data:`QUICK` (quick runs only).
    """
    out = []
    dtypes = ("float64", "float32")
    if quick:
        return [(fam, basis, FAMILY_K[basis], scheme, n, dt, i) for i, (fam, basis, scheme, n, dt)
                in enumerate(QUICK) if subset is None or i in subset]
    i = 0
    for fam, k in FAMILY_K.items():
        for scheme in SCHEMES:
            for n in (1, 2, 5):
                for dt in dtypes:
                    out.append(("ContinuousNet", fam, k, scheme, n, dt, i))
                    i += 1
    for fam, k in FAMILY_K.items():
        for scheme in SCHEMES:
            for n in (1, 3):
                out.append(("ContinuousTagger", fam, k, scheme, n, ("float64", "float32")[i % 2], i))
                i += 1
    return out


def _perturb(model, rng):
    dt = model.dtype
    for name, a in model.params.items():
        if name.endswith("gamma"):
            a[...] = (1 + 0.2 * rng.standard_normal(a.shape)).astype(dt)
        elif name.endswith("beta") or name.endswith("bias") or name.endswith("b2"):
            a[...] = (0.2 * rng.standard_normal(a.shape)).astype(dt)
        elif name.startswith("block") or name.startswith("ode."):
            a[...] = (a + 0.1 * rng.standard_normal(a.shape) / np.sqrt(a[0].size ** 0.5)).astype(dt)
    global_basis = model.basis.family in ("poly_linear", "legendre", "chebyshev", "fourier")
    for name, a in model.state.items():
        if name.endswith("mean"):
            a[...] = (0.1 * rng.standard_normal(a.shape)).astype(dt)
        elif name.startswith("block") and global_basis:
            # a positive variance in depth: a constant plus small higher modes
            a[...] = (0.05 * rng.standard_normal(a.shape)).astype(dt)
            a[0] = a[0] + (np.sqrt(model.basis.length) if model.basis.family == "legendre"
                           else 1.0)
        else:
            a[...] = rng.uniform(0.6, 1.4, a.shape).astype(dt)


def make(case):
    """Model, inputs, targets and the mode list of a case."""
    family, basis, k, scheme, n, dtype, i = case
    rng = np.random.default_rng(1000 + i)
    if family == "ContinuousNet":
        opts = NET_OPTIONS[i % len(NET_OPTIONS)]
        model = ContinuousNet(**NET_SHAPE, basis=basis, n_basis=k, scheme=scheme, n_steps=n,
                              seed=i, dtype=dtype, **opts)
        x = rng.standard_normal((3, NET_SHAPE["in_channels"], 6, 6)).astype(dtype)
        y = rng.integers(0, NET_SHAPE["n_classes"], 3)
        modes = ("train", "eval")
    else:
        import refode

        opts = TAGGER_OPTIONS[i % len(TAGGER_OPTIONS)]
        model = ContinuousTagger(**TAGGER_SHAPE, basis=refode.basis(basis, k, TAGGER_INTERVAL),
                                 scheme=scheme, n_steps=n, seed=i, dtype=dtype, padding_id=0,
                                 **opts)
        x = rng.integers(1, TAGGER_SHAPE["vocab_size"], (3, 5))
        x[0, -2:] = 0
        y = rng.integers(0, TAGGER_SHAPE["n_tags"], (3, 5))
        y[x == 0] = -100
        modes = ("train",)
    _perturb(model, rng)
    return model, x, y, modes, opts


def reference(model, x, y, mode):
    """refode's golden arrays and (train mode, ContinuousNet) the state after one step."""
    out = compute(model, x, y, mode)
    has_state = any(k.startswith(STATE) for k in out)
    if mode == "train" and isinstance(model, ContinuousNet) and not has_state:
        import copy

        stepped = copy.deepcopy(model)
        stepped.loss_and_gradients(x, y, train=True, update_state=True)
        out.update({f"{STATE}/{k}": v for k, v in stepped.state.items()})
    return out


def errors(ref, peer):
    """``(worst relative error, its array, {array: relative error})``; a missing array is inf.

    Relative error of an array: ``max |peer - refode| / max(max |refode|, floor)``,
    ``floor = GRADIENT_FLOOR * (largest gradient element of the case)`` for gradients.
    """
    table = {}
    grad_scale = max((np.abs(np.asarray(v, np.float64)).max(initial=0.0)
                      for k, v in ref.items() if k.startswith("gradients/")), default=0.0)
    for name, want in ref.items():
        got = peer.get(name)
        want = np.asarray(want, np.float64)
        if got is None or np.shape(got) != want.shape:
            table[name] = np.inf
            continue
        got = np.asarray(got, np.float64)
        floor = GRADIENT_FLOOR * grad_scale if name.startswith("gradients/") else 0.0
        scale = max(np.abs(want).max(initial=0.0), floor, np.finfo(np.float64).tiny)
        err = np.abs(got - want).max(initial=0.0) / scale
        table[name] = err if np.isfinite(err) else np.inf
    worst = max(table, key=table.get)
    return table[worst], worst, table


def report(rows, title):
    """Print the table of ``rows`` (dicts) and return 0 if every row passes, else 1."""
    head = f"{'model':16s} {'basis':18s} {'K':>2s} {'scheme':8s} {'N':>2s} {'dtype':7s} " \
           f"{'mode':5s} {'max rel err':>11s} {'tol':>7s}  worst array"
    print(title)
    print(head)
    print("-" * len(head))
    bad = 0
    for r in rows:
        ok = r["err"] <= TOLERANCE[r["dtype"]]
        bad += not ok
        print(f"{r['model']:16s} {r['basis']:18s} {r['K']:2d} {r['scheme']:8s} {r['N']:2d} "
              f"{r['dtype']:7s} {r['mode']:5s} {r['err']:11.2e} {TOLERANCE[r['dtype']]:7.0e}  "
              f"{r['worst']}{'' if ok else '   <-- FAIL'}")
    for dt in ("float64", "float32"):
        errs = [r["err"] for r in rows if r["dtype"] == dt]
        if errs:
            print(f"{dt}: {len(errs)} rows, max relative error {max(errs):.2e} "
                  f"(tolerance {TOLERANCE[dt]:.0e})")
    print(f"{len(rows) - bad}/{len(rows)} rows agree")
    return 0 if bad == 0 else 1
