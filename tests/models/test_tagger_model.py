"""The tagger as a model: parameter count, padding, rediscretize, threads, errors, float32."""
import numba
import numpy as np
import pytest

from refode.errors import BasisError, RefodeError, ShapeError
from refode.models import ContinuousTagger
from refode.models.transformer import PaperEncoderRate

from .tagger_setup import PAD, batch, tagger, warm

#: parameters of one basis function of the paper's encoder rate (width = ffn = 128).
PAPER_COUNT = 99_072
#: outputs of an exact change of basis that is not a plain copy agree to this (relative).
REFINE_RTOL = 1e-12
#: float32 vs float64 logits.
FLOAT32_RTOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warm()


@pytest.mark.parametrize("n_basis", [1, 3])
def test_parameter_count_of_the_paper_configuration(n_basis):
    vocab, tags, width = 50, 17, 128
    model = ContinuousTagger(vocab, tags, width=width, heads=1, ffn=128, n_basis=n_basis)
    static = vocab * width + 2 * width + tags * width + tags  # embedding, final LN, head
    assert model.num_parameters(depth_dependent=True) == PAPER_COUNT * n_basis
    assert model.num_parameters(depth_dependent=False) == static
    assert model.num_parameters() == PAPER_COUNT * n_basis + static
    assert all(a.shape[0] == n_basis for k, a in model.params.items() if k.startswith("ode."))
    assert model.state == {}


def test_seed_reproduces_and_basis_functions_differ():
    a, b = ContinuousTagger(11, 5, width=8, ffn=6, n_basis=2), ContinuousTagger(11, 5, width=8,
                                                                                ffn=6, n_basis=2)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    w = a.params["ode.mlp_w1"]
    assert not np.array_equal(w[0], w[1])


def test_euler_piecewise_constant_is_a_resnet_bit_for_bit():
    model = tagger(n_basis=3, n_steps=3)
    ids, _ = batch()
    rate = PaperEncoderRate(8, 1, 6).with_mask(ids == PAD)
    emb = model.network.layers["embed"]
    h, _ = emb.forward(ids, False)
    coefficients = model.network.layers["ode"].params
    for k in range(3):
        h = h + (1 / 3) * rate.forward(0.0, h, {n: 1.0 * c[k] for n, c in coefficients.items()})
    h, _ = model.network.layers["norm"].forward(h, False)
    logits, _ = model.network.layers["head"].forward(h, False)
    np.testing.assert_array_equal(model.forward(ids), logits)


def test_padding_does_not_change_real_positions():
    model = tagger(basis="fem_linear", n_basis=3, scheme="midpoint", heads=2)
    ids, targets = batch()
    longer_ids = np.concatenate([ids, np.full((3, 2), PAD)], axis=1)
    longer_targets = np.concatenate([targets, np.full((3, 2), -100)], axis=1)
    real = ids != PAD
    np.testing.assert_allclose(model.forward(longer_ids)[:, :5][real], model.forward(ids)[real],
                               rtol=1e-13, atol=1e-13)
    loss, grads = model.loss_and_gradients(ids, targets)
    loss2, grads2 = model.loss_and_gradients(longer_ids, longer_targets)
    assert abs(loss - loss2) <= 1e-13 * abs(loss)
    for name, g in grads.items():
        np.testing.assert_allclose(grads2[name], g, rtol=1e-11, atol=1e-13, err_msg=name)


def test_return_logits_gives_the_logits_of_the_loss_and_changes_nothing_else():
    model = tagger()
    ids, targets = batch()
    loss, grads = model.loss_and_gradients(ids, targets)
    loss2, grads2, logits = model.loss_and_gradients(ids, targets, return_logits=True)
    assert loss2 == loss and grads2.keys() == grads.keys()
    assert all(np.array_equal(grads2[k], g) for k, g in grads.items())
    np.testing.assert_array_equal(logits, model.forward(ids, train=True))


@pytest.mark.parametrize("scheme", ["euler", "rk4"])
@pytest.mark.parametrize("method", ["projection", "interpolation"])
def test_piecewise_constant_refinement_is_bitwise(scheme, method):
    model = tagger(n_basis=2, n_steps=2, scheme=scheme)
    ids, targets = batch()
    fine = model.rediscretize(n_basis=4, method=method)
    assert fine.basis.n == 4 and fine.n_steps == 2 and fine.scheme == scheme
    assert fine.num_parameters(True) == 2 * model.num_parameters(True)
    np.testing.assert_array_equal(fine.forward(ids), model.forward(ids))
    assert fine.loss(ids, targets) == model.loss(ids, targets)


@pytest.mark.parametrize("family, n_basis, n_fine", [("fem_linear", 3, 5), ("legendre", 2, 3)])
def test_exact_refinement_of_other_bases_keeps_outputs(family, n_basis, n_fine):
    model = tagger(basis=family, n_basis=n_basis, scheme="midpoint", n_steps=3)
    ids, _ = batch()
    fine = model.rediscretize(n_basis=n_fine)
    expected = model.forward(ids)
    np.testing.assert_allclose(fine.forward(ids), expected, rtol=REFINE_RTOL,
                               atol=REFINE_RTOL * np.abs(expected).max())


def test_projection_halves_the_depth_dependent_parameters():
    model = tagger(n_basis=4, n_steps=4)
    ids, targets = batch()
    before = {k: v.copy() for k, v in model.params.items()}
    coarse = model.rediscretize(n_basis=2)
    assert coarse.num_parameters(True) * 2 == model.num_parameters(True)
    assert coarse.num_parameters(False) == model.num_parameters(False)
    w, c = model.params["ode.mlp_w1"], coarse.params["ode.mlp_w1"]
    np.testing.assert_allclose(c, 0.5 * (w[0::2] + w[1::2]), rtol=1e-14, atol=1e-15)
    logits = coarse.forward(ids)
    assert logits.shape == (3, 5, 5) and np.all(np.isfinite(logits))
    assert np.isfinite(coarse.loss(ids, targets))
    coarse.params["head.weight"][...] = 0.0  # the copy shares nothing with the original
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, before[name])


def test_rediscretize_changes_family_scheme_and_steps():
    model = tagger(n_basis=4, n_steps=4)
    ids, _ = batch()
    other = model.rediscretize(basis="fem_linear", n_basis=3, scheme="rk4", n_steps=2)
    assert (other.basis.family, other.basis.n, other.scheme, other.n_steps) == (
        "fem_linear", 3, "rk4", 2)
    assert np.all(np.isfinite(other.forward(ids)))
    with pytest.raises(RefodeError, match="`method`"):
        model.rediscretize(n_basis=2, method="nearest")
    with pytest.raises(BasisError):
        model.rediscretize(basis="piecewise_linear", n_basis=3)


def test_outputs_and_gradients_are_bitwise_identical_with_one_and_two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:  # pragma: no cover - single-core machine
        pytest.skip("needs at least 2 Numba threads")
    model = tagger(basis="fem_linear", n_basis=3, scheme="rk4", heads=2)
    ids, targets = batch()
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append((model.forward(ids), *model.loss_and_gradients(ids, targets)))
    finally:
        numba.set_num_threads(before)
    (l1, loss1, g1), (l2, loss2, g2) = results
    np.testing.assert_array_equal(l1, l2)
    assert loss1 == loss2
    for name in g1:
        np.testing.assert_array_equal(g1[name], g2[name], err_msg=name)


@pytest.mark.slow
def test_float32_model_runs_in_float32():
    """Forward only: compiling every float32 VJP kernel would double the suite's time."""
    ids, targets = batch()
    f64 = ContinuousTagger(11, 5, width=8, ffn=6, n_basis=2, n_steps=2)
    f32 = ContinuousTagger(11, 5, width=8, ffn=6, n_basis=2, n_steps=2, dtype=np.float32)
    logits = f32.forward(ids)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, f64.forward(ids), rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL)
    assert np.isclose(f32.loss(ids, targets), f64.loss(ids, targets), rtol=FLOAT32_RTOL)


def test_bad_inputs_raise_with_the_fix():
    model = tagger()
    ids, targets = batch()
    with pytest.raises(RefodeError, match="outside"):
        model.forward(ids + 20)
    with pytest.raises(ShapeError, match="`x`"):
        model.forward(ids.astype(np.float64))
    bad = targets.copy()
    bad[ids == PAD] = 1
    with pytest.raises(RefodeError, match="-100"):
        model.loss_and_gradients(ids, bad)
    with pytest.raises(ShapeError, match="`y`"):
        model.loss(ids, targets[:, :3])
    with pytest.raises(RefodeError):
        ContinuousTagger(11, 5, width=8, heads=3, ffn=6, n_basis=2)
    with pytest.raises(RefodeError, match="`rate`"):
        ContinuousTagger(11, 5, width=8, ffn=6, n_basis=2, rate="post_ln")
