"""refode's models against independent PyTorch implementations (float64).

ContinuousNet: logits, loss, every gradient and the running statistics after a training
step, then evaluation mode with those statistics. The tagger: logits, loss and every
gradient. Both peers compute their stage grid themselves (:mod:`.torch_grid`, no refode
import), and a peer built on a deliberately wrong grid (the one-sided limits swapped) is
shown to disagree, so these tests catch a wrong piece choice in refode.
"""
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import refode

from . import torch_continuousnet, torch_grid, torch_tagger
from .convnet_setup import (  # noqa: F401
    TINY, batch, convnet_compiled, convnet_env, relative_errors, tiny)
from .tagger_setup import PAD, tagger
from .tagger_setup import batch as tagger_batch
from .torch_continuousnet import TorchContinuousNet
from .torch_tagger import TorchTagger

pytestmark = pytest.mark.usefixtures("convnet_env")

#: tolerances of the issue: logits absolute (they are O(1)), gradients relative.
LOGIT_TOL, GRAD_RTOL = 1e-12, 1e-10
#: running statistics after one step (O(1) values; sums in different orders).
STATE_TOL = 1e-13
#: (family, K, scheme, N): N < K, N not a multiple of K, stages on breakpoints.
CASES = [("piecewise_constant", 3, "euler", 3), ("piecewise_constant", 3, "rk4", 2),
         ("fem_linear", 3, "midpoint", 4), ("legendre", 2, "rk4", 3),
         ("piecewise_constant", 4, "midpoint", 3), ("piecewise_constant", 4, "euler", 3),
         ("piecewise_constant", 4, "rk4", 2), ("piecewise_constant", 2, "midpoint", 1)]


def _torch_step(net, x, y, train):
    net.train(train)
    for p in net.parameters():
        p.grad = None
    logits = net(torch.from_numpy(x))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    tensors = net.tensors()
    return logits.detach().numpy(), loss.item(), tensors


def _compare(model, net, x, y, train):
    logits_t, loss_t, tensors = _torch_step(net, x, y, train)
    np.testing.assert_allclose(model.forward(x, train, update_state=False), logits_t,
                               rtol=0, atol=LOGIT_TOL)
    loss, grads = model.loss_and_gradients(x, y, train=train)
    assert abs(loss - loss_t) < LOGIT_TOL
    want = {k: tensors[k].grad.numpy() for k in grads}
    errors = relative_errors(grads, want)
    assert max(errors.values()) < GRAD_RTOL, max(errors.items(), key=lambda e: e[1])
    for name, value in model.state.items():
        np.testing.assert_allclose(value, tensors[name].detach().numpy(), rtol=0,
                                   atol=STATE_TOL, err_msg=name)


#: the architecture options (defaults first: no head activation, symmetric padding).
OPTIONS = [{}, {"head_activation": "relu"},
           {"padding": "same", "rate_scale": 0.7, "stitch_scale": 0.25},
           {"padding": "same", "head_activation": "relu", "rate_scale": 1.5}]


@pytest.mark.parametrize("options", OPTIONS,
                         ids=lambda o: "-".join(map(str, o.values())) or "default")
@pytest.mark.parametrize("family,k,scheme,n", CASES)
def test_matches_pytorch(family, k, scheme, n, options):
    model = tiny(basis=family, n_basis=k, scheme=scheme, n_steps=n, seed=7, **options)
    net = TorchContinuousNet(model, TINY["in_channels"], TINY["n_classes"], TINY["widths"])
    for seed in (0, 1):  # two training steps: the second starts from fitted statistics
        x, y = batch(seed)
        _compare(model, net, x, y, train=True)
    x, y = batch(2)
    _compare(model, net, x, y, train=False)
    assert not np.allclose(model.state["block1.bn1.mean"], 0.0)


# --------------------------------------------------------------------------------------
# the peers' own stage grid (tests/models/torch_grid.py, no refode import)
# --------------------------------------------------------------------------------------
def test_peer_grid_imports_nothing_of_refode():
    import ast
    import inspect

    for module in (torch_grid, torch_continuousnet, torch_tagger):
        tree = ast.parse(inspect.getsource(module))
        names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names]
        names += [node.module or "" for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom)]
        assert not [n for n in names if n.startswith("refode")], (module.__name__, names)


def test_peer_grid_follows_the_documented_examples():
    """docs/format.md 4.5: Euler + piecewise_constant with N = K uses piece n at step n
    (also K = 7, where a floating grid picks the previous piece); RK4 with N = K uses piece
    n at all four stages; midpoint with K = 2, N = 1 puts its second stage on the
    breakpoint 1/2 and takes the piece to its right."""
    for k in (3, 7, 9, 12):
        rows = torch_grid.supports(("piecewise_constant", k), "euler", k)
        assert [row[0] for row in rows] == [((n,), (1.0,)) for n in range(k)]
    rows = torch_grid.supports(("piecewise_constant", 5), "rk4", 5)
    assert [[s[0] for s in row] for row in rows] == [[(n,)] * 4 for n in range(5)]
    assert torch_grid.supports(("piecewise_constant", 2), "midpoint", 1) == [
        [((0,), (1.0,)), ((1,), (1.0,))]]
    # the last stage of RK4 with N = 2 on K = 4 sits on breakpoints 1/2 and 1: left pieces
    assert [row[3][0] for row in torch_grid.supports(("piecewise_constant", 4), "rk4", 2)] == [
        (1,), (3,)]


@pytest.mark.parametrize("family,k", [("piecewise_constant", 4), ("piecewise_linear", 4),
                                      ("fem_linear", 3), ("legendre", 3), ("chebyshev", 4),
                                      ("fourier", 5), ("poly_linear", 2)])
@pytest.mark.parametrize("scheme", sorted(torch_grid.TABLEAUS))
def test_peer_grid_agrees_with_refode(family, k, scheme):
    """The two grids, computed independently, agree (pieces exactly, weights to round-off)."""
    basis = refode.basis(family, k, interval=(0.5, 2.0))
    for n_steps in (1, 2, 3, 4, 6):
        tab = refode.tableau(scheme)
        ours = torch_grid.supports(basis, scheme, n_steps)
        assert len(ours) == n_steps and all(len(row) == len(tab.c) for row in ours)
        for n, row in enumerate(ours):
            for i, (idx, w) in enumerate(row):
                phi = np.zeros(k)
                phi[list(idx)] = w
                position = (n + Fraction(tab.c[i])) / n_steps
                side = "left" if tab.c[i] == 1 else "right"
                np.testing.assert_allclose(phi, basis.evaluate_at(position, side),
                                           rtol=1e-14, atol=1e-14)


def _differs_somewhere(basis, scheme, n_steps):
    return (torch_grid.supports(basis, scheme, n_steps)
            != torch_grid.supports(basis, scheme, n_steps, flip=True))


def test_cases_put_stages_where_the_side_matters():
    """Both case lists have stages on interior breakpoints, for a stage that ends its step
    (RK4, ``c = 1``: left limit) and for inner stages (Euler ``c = 0``, midpoint ``c = 1/2``:
    right limit), so a wrong side changes the weights the agreement tests compare."""
    for cases in (CASES, [case[:4] for case in TAGGER_CASES]):
        schemes = {scheme for family, k, scheme, n in cases
                   if family in ("piecewise_constant", "piecewise_linear")
                   and _differs_somewhere((family, k), scheme, n)}
        assert {"rk4", "midpoint"} <= schemes, schemes


@pytest.mark.parametrize("family,k,scheme,n", [("piecewise_constant", 4, "rk4", 2),
                                               ("piecewise_constant", 2, "midpoint", 1)])
def test_a_wrong_piece_choice_is_caught(family, k, scheme, n):
    """The peer on the flipped grid disagrees with refode far beyond the tolerances."""
    model = tiny(basis=family, n_basis=k, scheme=scheme, n_steps=n, seed=7)
    x, _ = batch(0)
    wrong = TorchContinuousNet(model, TINY["in_channels"], TINY["n_classes"], TINY["widths"],
                               flip=True)
    wrong.train(False)
    with torch.no_grad():
        logits = wrong(torch.from_numpy(x)).numpy()
    assert np.abs(model.forward(x, False, update_state=False) - logits).max() > 1e3 * LOGIT_TOL


#: tagger cases (family, K, scheme, N, options): stages on breakpoints, both rates, an
#: interval other than [0, 1].
TAGGER_CASES = [("piecewise_constant", 4, "rk4", 2, {}),
                ("piecewise_constant", 2, "midpoint", 1, {"rate": "pre_ln", "heads": 2}),
                ("piecewise_linear", 4, "heun", 3, {"heads": 2}),
                ("fem_linear", 3, "ssprk3", 2, {"interval": (0.0, 2.5)})]


def _tagger_case(family, k, scheme, n, options):
    options = dict(options)
    interval = options.pop("interval", (0.0, 1.0))
    model = tagger(seed=4, basis=refode.basis(family, k, interval=interval), n_basis=k,
                   scheme=scheme, n_steps=n, **options)
    return model, options.get("heads", 1), options.get("rate", "paper")


@pytest.mark.parametrize("family,k,scheme,n,options", TAGGER_CASES,
                         ids=lambda v: v if isinstance(v, (str, int)) else "")
def test_tagger_matches_pytorch_on_its_own_grid(family, k, scheme, n, options):
    model, heads, kind = _tagger_case(family, k, scheme, n, options)
    ids, targets = tagger_batch(seed=5)
    twin = TorchTagger(model.params, model.basis, scheme, n, heads, PAD, kind)
    with torch.no_grad():
        expected = twin(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(model.forward(ids, train=False), expected, rtol=0,
                               atol=LOGIT_TOL * max(1.0, np.abs(expected).max()))
    loss, grads = model.loss_and_gradients(ids, targets)
    torch_loss, torch_grads = twin.loss_and_gradients(torch.from_numpy(ids),
                                                      torch.from_numpy(targets))
    assert abs(loss - torch_loss) <= LOGIT_TOL * max(1.0, abs(torch_loss))
    errors = relative_errors(grads, torch_grads)
    assert max(errors.values()) < GRAD_RTOL, max(errors.items(), key=lambda e: e[1])
    if family == "piecewise_constant":
        wrong = TorchTagger(model.params, model.basis, scheme, n, heads, PAD, kind, flip=True)
        with torch.no_grad():
            off = np.abs(wrong(torch.from_numpy(ids)).numpy() - expected).max()
        assert off > 1e3 * LOGIT_TOL
