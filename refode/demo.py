"""The main job: train, compress and re-discretize an ODE-Net on the bundled digits.

Uses scikit-learn's 8x8 digits (shipped inside its wheel; no data path needed).
The network is ``x -> dense -> ODE-block -> dense -> softmax`` whose block rate is
:class:`refode.rates.DenseTanh` with weights expanded in a piecewise-constant
basis (paper, Eq. 3). It is trained with multilevel refinement (K = N = 1 -> 2 ->
4 -> 8, momentum reset at each refinement), then compressed without retraining by
exact L2 projection (and, for comparison, interpolation) onto smaller bases, and
evaluated with several schemes and step counts.
"""
import json
import os
import time

import numpy as np

from . import _io
from .bases import basis as make_basis
from .integrate import gradient, odeint
from .projection import interpolate, project, refine
from .rates import DenseTanh, init_coefficients

#: width of the ODE-block state.
WIDTH = 32
#: classes of the digits data.
N_CLASSES = 10
#: held-out test images (the rest of the 1,797 train).
N_TEST = 397
#: epochs at each level of refinement K = N = 1, 2, 4, 8.
EPOCHS_PER_LEVEL = (6, 6, 6, 12)
BATCH = 64
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4


def load_digits_split(seed):
    """Digits as float64 in [0, 1], split into (x_train, y_train, x_test, y_test)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "the demo needs scikit-learn's bundled digits: pip install 'refode[demo]'"
        ) from exc
    data = load_digits()
    x = data.data.astype(np.float64) / 16.0
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    return x[N_TEST:], y[N_TEST:], x[:N_TEST], y[:N_TEST]


def _softmax_xent(logits, y):
    """Mean cross-entropy and its gradient with respect to ``logits`` (N, C)."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y)), y].mean()
    grad = np.exp(logp)
    grad[np.arange(len(y)), y] -= 1.0
    return loss, grad / len(y)


class DigitsODENet:
    """Dense stem, one ODE-block of :class:`~refode.rates.DenseTanh`, dense head."""

    def __init__(self, n_inputs, seed):
        rng = np.random.default_rng(seed)
        self.rate = DenseTanh()
        self.basis = make_basis("piecewise_constant", 1)
        self.scheme, self.n_steps = "euler", 1
        self.static = {
            "stem_w": rng.standard_normal((WIDTH, n_inputs)) / np.sqrt(n_inputs),
            "stem_b": np.zeros(WIDTH),
            "head_w": rng.standard_normal((N_CLASSES, WIDTH)) / np.sqrt(WIDTH),
            "head_b": np.zeros(N_CLASSES),
        }
        self.coefficients = init_coefficients(self.basis, WIDTH, rng, scale=1.0)

    def num_parameters(self):
        return sum(v.size for v in self.static.values()) + sum(
            v.size for v in self.coefficients.values()
        )

    def logits(self, x, *, basis=None, coefficients=None, scheme=None, n_steps=None):
        s = self.static
        h0 = x @ s["stem_w"].T + s["stem_b"]
        h = odeint(
            self.rate, h0, coefficients or self.coefficients, basis or self.basis,
            scheme=scheme or self.scheme, n_steps=n_steps or self.n_steps,
        )
        return h @ s["head_w"].T + s["head_b"]

    def loss_and_gradients(self, x, y):
        s = self.static
        h0 = x @ s["stem_w"].T + s["stem_b"]
        kw = dict(scheme=self.scheme, n_steps=self.n_steps)
        hT = odeint(self.rate, h0, self.coefficients, self.basis, **kw)
        loss, g_logits = _softmax_xent(hT @ s["head_w"].T + s["head_b"], y)
        g_hT = g_logits @ s["head_w"]
        g_h0, g_coef = gradient(self.rate, h0, self.coefficients, self.basis, g_hT, **kw)
        grads = {
            "head_w": g_logits.T @ hT, "head_b": g_logits.sum(axis=0),
            "stem_w": g_h0.T @ x, "stem_b": g_h0.sum(axis=0),
        }
        grads.update(g_coef)
        return loss, grads

    def refine(self):
        """Double K and N exactly (pieces split in two); theta(t) is unchanged."""
        fine = None
        for name, c in self.coefficients.items():
            fine, self.coefficients[name] = refine(c, self.basis)
        self.basis, self.n_steps = fine, 2 * self.n_steps

    def parameters(self):
        return {**self.static, **self.coefficients}


def train(model, x, y, seed, log):
    """SGD with momentum and weight decay, refining K = N at each level."""
    rng = np.random.default_rng(seed + 1)
    for level, epochs in enumerate(EPOCHS_PER_LEVEL):
        if level:
            model.refine()
        velocity = {k: np.zeros_like(v) for k, v in model.parameters().items()}
        for epoch in range(epochs):
            order = rng.permutation(len(y))
            losses = []
            for start in range(0, len(y), BATCH):
                idx = order[start:start + BATCH]
                loss, grads = model.loss_and_gradients(x[idx], y[idx])
                losses.append(loss)
                params = model.parameters()
                for k, g in grads.items():
                    velocity[k] = MOMENTUM * velocity[k] + g + WEIGHT_DECAY * params[k]
                    params[k] -= LEARNING_RATE * velocity[k]
            log(f"K = N = {model.basis.n:2d}  epoch {epoch + 1:2d}/{epochs}  "
                f"loss {np.mean(losses):.4f}")


def _configurations(model):
    """(basis, method, schemes and step counts) of the evaluation table."""
    K = model.basis.n
    rows = [("piecewise_constant", K, "trained")]
    for k in (4, 2, 1):
        rows += [("piecewise_constant", k, "projection"), ("piecewise_constant", k, "interpolation")]
    rows += [("fem_linear", 4, "projection"), ("legendre", 3, "projection")]
    return rows


def evaluate(model, x_test, y_test):
    """Accuracy of every compressed model for several schemes and step counts."""
    report = []
    depth_static = sum(v.size for v in model.static.values())
    per_coefficient = sum(v[0].size for v in model.coefficients.values())
    for family, k, method in _configurations(model):
        target = make_basis(family, k)
        if method == "trained":
            coefs = model.coefficients
        else:
            change = project if method == "projection" else interpolate
            coefs = {n: change(c, model.basis, target) for n, c in model.coefficients.items()}
        runs = dict.fromkeys((("euler", k), ("euler", 8), ("midpoint", 4), ("rk4", 2), ("rk4", 8)))
        for scheme, n_steps in runs:
            start = time.perf_counter()
            logits = model.logits(x_test, basis=target, coefficients=coefs,
                                  scheme=scheme, n_steps=n_steps)
            seconds = time.perf_counter() - start
            report.append({
                "basis": family, "n_basis": k, "method": method, "scheme": scheme,
                "n_steps": n_steps, "accuracy": float(np.mean(logits.argmax(1) == y_test)),
                "n_parameters": int(depth_static + k * per_coefficient), "seconds": seconds,
            })
    return report


def format_table(report):
    """The report as a fixed-width text table."""
    head = f"{'basis':<19}{'K':>3}  {'method':<14}{'scheme':<9}{'N':>3}  {'accuracy':>8}  {'params':>7}  {'ms':>7}"
    lines = [head, "-" * len(head)]
    for r in report:
        lines.append(
            f"{r['basis']:<19}{r['n_basis']:>3}  {r['method']:<14}{r['scheme']:<9}"
            f"{r['n_steps']:>3}  {100 * r['accuracy']:7.2f}%  {r['n_parameters']:>7}  "
            f"{1e3 * r['seconds']:7.2f}"
        )
    return "\n".join(lines)


def run_demo(out="out/demo", seed=0, quiet=False):
    """Train, compress and evaluate; write ``out/report.json``; return the report rows."""
    log = (lambda msg: None) if quiet else (lambda msg: print(msg, flush=True))
    x_train, y_train, x_test, y_test = load_digits_split(seed)
    model = DigitsODENet(x_train.shape[1], seed)
    start = time.perf_counter()
    train(model, x_train, y_train, seed, log)
    log(f"trained in {time.perf_counter() - start:.1f} s")
    report = evaluate(model, x_test, y_test)
    print(format_table(report))
    os.makedirs(out, exist_ok=True)
    _io.write_text(os.path.join(out, "report.json"), json.dumps(report, indent=1) + "\n")
    print(f"wrote {os.path.join(out, 'report.json')}")
    return report
