"""Exact refinement leaves the network's function unchanged.

Asserted: with the discretisation kept (same scheme and ``N``), refining ``K`` gives
bitwise the same logits for piecewise constant (the split copies coefficients) and
for FEM when every stage sits on a coarse node or a coarse element midpoint (Euler,
``N = 2`` here: the coarse value there is exactly what the refined coefficient
stores). For FEM with stages elsewhere (RK4, or Euler with ``N = 4``) the logits
agree to round-off (1e-13 relative): FEM refinement is exact in exact arithmetic,
but ``0.75 a + 0.25 b`` and ``0.5 a + 0.5 (0.5 a + 0.5 b)`` round differently.
Both in training mode (batch statistics) and in evaluation mode (running
statistics, also refined).

The tagger (no running statistics) obeys the same rules; and refining with the
paper's doubling (``K -> 2K`` and ``N -> 2N``) gives bitwise the logits of the coarse
model integrated with ``2N`` steps: the refined pieces hold copies, so only the step
count changes the function.
"""
import numpy as np
import pytest

from refode.errors import RefodeError
from refode.models import ContinuousNet
from refode.train import refine_model

from ..models.tagger_setup import batch, tagger

SHAPE = (5, 1, 6, 6)


def _trained_net(basis, n_basis, scheme, n_steps):
    net = ContinuousNet(in_channels=1, n_classes=3, widths=(3, 4), basis=basis,
                        n_basis=n_basis, scheme=scheme, n_steps=n_steps, seed=2)
    rng = np.random.default_rng(3)
    for _ in range(2):  # make the running statistics depth-dependent
        net.forward(rng.standard_normal(SHAPE), train=True)
    return net, rng.standard_normal(SHAPE)


@pytest.mark.parametrize("basis,n_basis,scheme,n_steps", [
    ("piecewise_constant", 1, "euler", 2),
    ("piecewise_constant", 2, "rk4", 3),
    ("fem_linear", 2, "euler", 2),
    ("fem_linear", 3, "euler", 2),
])
def test_refinement_is_bitwise_with_the_same_discretisation(basis, n_basis, scheme, n_steps):
    net, x = _trained_net(basis, n_basis, scheme, n_steps)
    fine = refine_model(net, steps_factor=1)
    assert fine.basis.n > net.basis.n and fine.n_steps == net.n_steps
    assert np.array_equal(fine.forward(x, train=False), net.forward(x, train=False))
    before = net.forward(x, train=True, update_state=False)
    assert np.array_equal(fine.forward(x, train=True, update_state=False), before)


@pytest.mark.parametrize("scheme,n_steps", [("rk4", 3), ("euler", 4)])
def test_fem_refinement_off_the_nodes_agrees_to_round_off(scheme, n_steps):
    net, x = _trained_net("fem_linear", 3, scheme, n_steps)
    fine = refine_model(net, steps_factor=1)
    assert fine.basis.n == 5
    np.testing.assert_allclose(fine.forward(x, train=False), net.forward(x, train=False),
                               rtol=1e-13, atol=1e-13)


def test_refinement_doubles_k_and_n_and_keeps_the_coefficients():
    net, _ = _trained_net("piecewise_constant", 2, "euler", 2)
    fine = refine_model(net)
    assert (fine.basis.n, fine.n_steps) == (4, 4)
    for name, coarse in {**net.params, **net.state}.items():
        refined = {**fine.params, **fine.state}[name]
        if name.startswith("block"):
            assert np.array_equal(refined, np.repeat(coarse, 2, axis=0))
        else:
            assert np.array_equal(refined, coarse)
    assert net.basis.n == 2  # the original is untouched


@pytest.mark.parametrize("basis,n_basis,scheme,n_steps", [
    ("piecewise_constant", 1, "euler", 2),
    ("piecewise_constant", 2, "euler", 2),
    ("piecewise_constant", 2, "rk4", 3),
    ("fem_linear", 2, "euler", 2),
    ("fem_linear", 3, "midpoint", 2),
])
def test_tagger_refinement_is_bitwise_with_the_same_discretisation(basis, n_basis, scheme,
                                                                   n_steps):
    model = tagger(basis=basis, n_basis=n_basis, scheme=scheme, n_steps=n_steps)
    ids, _ = batch()
    fine = refine_model(model, steps_factor=1)
    assert fine.basis.n > model.basis.n and fine.n_steps == model.n_steps
    assert np.array_equal(fine.forward(ids), model.forward(ids))


def test_tagger_fem_refinement_off_the_nodes_agrees_to_round_off():
    model = tagger(basis="fem_linear", n_basis=3, scheme="rk4", n_steps=3)
    ids, _ = batch()
    fine = refine_model(model, steps_factor=1)
    assert fine.basis.n == 5
    np.testing.assert_allclose(fine.forward(ids), model.forward(ids), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("scheme", ["euler", "rk4"])
def test_tagger_doubling_equals_the_coarse_model_with_twice_the_steps(scheme):
    # Euler, piecewise constant, N = K: a ResNet of K blocks becomes one of 2K blocks
    # (each coarse block split into two half steps): a different function, but exactly
    # the coarse theta(t) integrated with 2N steps.
    model = tagger(n_basis=2, n_steps=2, scheme=scheme)
    ids, _ = batch()
    fine = refine_model(model)
    assert (fine.basis.n, fine.n_steps) == (4, 4)
    assert np.array_equal(fine.forward(ids), model.rediscretize(n_steps=4).forward(ids))
    assert not np.array_equal(fine.forward(ids), model.forward(ids))


def test_tagger_refinement_splits_only_the_ode_coefficients():
    model = tagger(n_basis=2, n_steps=2)
    fine = refine_model(model)
    assert fine.params.keys() == model.params.keys()
    for name, coarse in model.params.items():
        refined = fine.params[name]
        if name.startswith("ode."):
            assert np.array_equal(refined, np.repeat(coarse, 2, axis=0)), name
        else:
            assert np.array_equal(refined, coarse) and refined is not coarse, name
    assert model.basis.n == 2 and model.params["ode.mlp_w1"].shape[0] == 2


def test_refine_model_refuses_other_objects():
    with pytest.raises(RefodeError, match="`model`"):
        refine_model(object())
