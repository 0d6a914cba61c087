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
"""
import numpy as np
import pytest

from refode.models import ContinuousNet
from refode.train import refine_model

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
