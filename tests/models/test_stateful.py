"""The stateful ODE-block: running statistics as basis expansions in depth."""
import warnings

import numpy as np
import pytest
import torch

import refode
from refode.integrate.grid import stage_grid
from refode.models import _ops
from refode.models.conv import STATS, ConvRate
from refode.models.stateful import StatefulODEBlock, init_params, init_state

from .convnet_setup import convnet_compiled, convnet_env  # noqa: F401
from .plain_rate import PlainRate

pytestmark = pytest.mark.usefixtures("convnet_env")

#: channels and images of the block tests.
CHANNELS, SHAPE = 3, (3, 3, 5, 5)
#: PyTorch's batch-norm settings of the paper.
EPS, MOMENTUM = 1e-5, 0.1


def _block(family, k, scheme, n, seed=0, checkpoint="all", slots=None, random_state=True):
    rng = np.random.default_rng(seed)
    basis = refode.basis(family, k)
    params = init_params(basis, CHANNELS, rng, np.float64)
    params = {name: v + 0.1 * rng.standard_normal(v.shape) for name, v in params.items()}
    state = init_state(basis, CHANNELS, np.float64)
    if random_state:
        state = {name: v + 0.2 * rng.random(v.shape) for name, v in state.items()}
    return StatefulODEBlock(basis, scheme, n, params, state, checkpoint, slots)


def _images(seed=1):
    return np.random.default_rng(seed).standard_normal(SHAPE)


def _recorded_stages(block, x):
    """Batch statistics of every stage, observed in a separate integration of the rate."""
    observed = []
    refode.odeint(ConvRate(train=True), x, block.params, block.basis, scheme=block.scheme,
                  n_steps=block.n_steps, observer=observed.append)
    return [stage.stats for stage in observed]


def test_euler_piecewise_constant_is_k_batchnorm_layers():
    k = 4
    block = _block("piecewise_constant", k, "euler", k)
    old = {name: v.copy() for name, v in block.state.items()}
    x = _images()
    block.forward(x, train=True)
    rate, h, dt = ConvRate(train=True), x, 1.0 / k
    for piece in range(k):  # the ResNet: h += dt * R_piece(h), BN with batch statistics
        theta = {name: c[piece] for name, c in block.params.items()}
        r1, m1, v1 = _ops.bn_relu(h, theta["bn1.gamma"], theta["bn1.beta"], None, None, True)
        c1 = _ops.conv(r1, theta["conv1.weight"], 1, 1, rate.workspace)
        r2, m2, v2 = _ops.bn_relu(c1, theta["bn2.gamma"], theta["bn2.beta"], None, None, True)
        for name, batch in zip(STATS, (m1, v1, m2, v2)):  # direct formula, bitwise
            np.testing.assert_array_equal(block.state[name][piece],
                                          MOMENTUM * batch + (1 - MOMENTUM) * old[name][piece])
        for which, inp in (("bn1", h), ("bn2", c1)):  # PyTorch's BatchNorm2d
            bn = torch.nn.BatchNorm2d(CHANNELS, eps=EPS, momentum=MOMENTUM, dtype=torch.float64)
            with torch.no_grad():
                bn.running_mean.copy_(torch.from_numpy(old[f"{which}.mean"][piece]))
                bn.running_var.copy_(torch.from_numpy(old[f"{which}.var"][piece]))
            bn.train()(torch.from_numpy(inp))
            np.testing.assert_allclose(block.state[f"{which}.mean"][piece],
                                       bn.running_mean.numpy(), rtol=1e-14, atol=1e-16)
            np.testing.assert_allclose(block.state[f"{which}.var"][piece],
                                       bn.running_var.numpy(), rtol=1e-14)
        h = h + dt * rate.forward(0.0, h, theta)


@pytest.mark.parametrize("family,k", [("fem_linear", 3), ("legendre", 3),
                                      ("piecewise_constant", 2)])
def test_rk4_fit_is_least_squares_of_stage_samples(family, k):
    block = _block(family, k, "rk4", 2)
    old = {name: v.copy() for name, v in block.state.items()}
    x = _images(2)
    records = _recorded_stages(block, x)
    block.forward(x, train=True)
    grid = stage_grid(block.basis, refode.tableau("rk4"), 2)
    points = [(p, s) for row, sides in zip(grid.positions, grid.sides) for p, s in zip(row, sides)]
    phi = np.array([block.basis.evaluate_at(p, s) for p, s in points])
    assert phi.shape == (8, k) and np.linalg.matrix_rank(phi) == k
    for j, name in enumerate(STATS):
        samples = np.array([MOMENTUM * r[j] + (1 - MOMENTUM) * (phi[i] @ old[name])
                            for i, r in enumerate(records)])
        want, *_ = np.linalg.lstsq(phi, samples, rcond=None)
        np.testing.assert_allclose(block.state[name], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k,n,sampled", [(4, 3, (0, 1, 2)), (4, 2, (0, 2)), (5, 2, (0, 2)),
                                         (3, 1, (0,))])
def test_unsampled_pieces_keep_their_statistics(k, n, sampled):
    block = _block("piecewise_constant", k, "euler", n)
    old = {name: v.copy() for name, v in block.state.items()}
    x = _images(3)
    records = _recorded_stages(block, x)
    block.forward(x, train=True)
    for name in STATS:
        for piece in range(k):
            if piece not in sampled:
                np.testing.assert_array_equal(block.state[name][piece], old[name][piece])
        for i, piece in enumerate(sampled):
            assert not np.array_equal(block.state[name][piece], old[name][piece])
            want = MOMENTUM * records[i][STATS.index(name)] + (1 - MOMENTUM) * old[name][piece]
            np.testing.assert_array_equal(block.state[name][piece], want)


def test_two_samples_per_piece_are_averaged():
    block = _block("piecewise_constant", 2, "euler", 4)  # 4 steps, 2 per piece
    old = {name: v.copy() for name, v in block.state.items()}
    x = _images(4)
    records = _recorded_stages(block, x)
    block.forward(x, train=True)
    for j, name in enumerate(STATS):
        s = [MOMENTUM * r[j] + (1 - MOMENTUM) * old[name][i // 2] for i, r in enumerate(records)]
        np.testing.assert_allclose(block.state[name], [(s[0] + s[1]) / 2, (s[2] + s[3]) / 2],
                                   rtol=1e-14)


@pytest.mark.parametrize("checkpoint,slots", [("steps", None), ("binomial", 1)])
def test_backward_recomputation_records_nothing(checkpoint, slots):
    ref = _block("fem_linear", 3, "midpoint", 3)
    other = _block("fem_linear", 3, "midpoint", 3, checkpoint=checkpoint, slots=slots)
    x = _images(5)
    w = np.random.default_rng(6).standard_normal(SHAPE)
    h_ref, cache_ref = ref.forward(x, train=True)
    h, cache = other.forward(x, train=True)
    after_forward = {name: v.copy() for name, v in other.state.items()}
    dx_ref, g_ref = ref.backward(cache_ref, w)
    dx, g = other.backward(cache, w)
    np.testing.assert_array_equal(h, h_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    for name in g_ref:
        np.testing.assert_array_equal(g[name], g_ref[name])
    for name, v in other.state.items():
        np.testing.assert_array_equal(v, after_forward[name])
        np.testing.assert_array_equal(v, ref.state[name])


def test_evaluation_uses_statistics_at_the_stage():
    block = _block("fem_linear", 2, "midpoint", 1)  # stages at 0 and 1/2
    x = _images(7)
    h, _ = block.forward(x, train=False)
    rate = ConvRate(train=False)
    coefficients = {**block.params, **block.state}
    theta0 = {name: c[0] for name, c in coefficients.items()}
    theta_mid = {name: 0.5 * c[0] + 0.5 * c[1] for name, c in coefficients.items()}
    k0 = rate.forward(0.0, x, theta0)
    want = x + 1.0 * rate.forward(0.5, x + 0.5 * k0, theta_mid)
    np.testing.assert_allclose(h, want, rtol=0, atol=1e-14)
    assert not np.allclose(block.state["bn1.var"][0], block.state["bn1.var"][1])


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("checkpoint,slots", [("all", None), ("steps", None), ("binomial", 1)])
def test_conv_rate_saving_is_bitwise_plain(train, checkpoint, slots):
    block = _block("fem_linear", 3, "midpoint", 3)
    x = _images(7)
    w = np.random.default_rng(8).standard_normal(SHAPE)
    c = dict(block.params) if train else {**block.params, **block.state}
    kw = {"scheme": "midpoint", "n_steps": 3, "checkpoint": checkpoint, "slots": slots}
    dx_ref, g_ref = refode.gradient(PlainRate(ConvRate(train)), x, c, block.basis, w, **kw)
    rate = ConvRate(train)
    calls = []
    rate.vjp_saved = lambda *args: calls.append(1) or ConvRate.vjp_saved(rate, *args)
    dx, g = refode.gradient(rate, x, c, block.basis, w, **kw)
    assert len(calls) == 3 * 2  # every stage of the midpoint steps used what it saved
    np.testing.assert_array_equal(dx, dx_ref)
    assert g.keys() == g_ref.keys()
    for name in g_ref:
        np.testing.assert_array_equal(g[name], g_ref[name])


def _decaying_variance_block():
    """pc K = 4 whose bn1 variance falls 1 -> 0.01 over depth (positive everywhere)."""
    block = _block("piecewise_constant", 4, "euler", 4, random_state=False)
    var = np.array([1.0, 0.4, 0.05, 0.01])[:, None] * np.ones(CHANNELS)
    block.state["bn1.var"] = var
    return block


def test_projection_to_a_line_can_make_the_variance_negative_and_warns():
    block = _decaying_variance_block()
    assert block.nonpositive_variances() == []
    with pytest.warns(refode.errors.RefodeWarning, match=r"bn1\.var at t = 1 \(3 channels\)"):
        line = block.rebased(refode.basis("legendre", 2), "rk4", 1, "projection")
    # the projection of the steps onto lines is 0.365 - 0.6225 (2t - 1): negative only
    # past t = 0.79, so only RK4's last stage (t = 1) sees it; Euler's stages do not
    assert block.rebased(refode.basis("legendre", 2), "euler", 4,
                         "projection").nonpositive_variances() == []
    assert line.nonpositive_variances() == [("bn1.var", 1, CHANNELS)]
    out, _ = line.forward(_images(), train=False)
    assert np.isnan(out).any()


def test_positivity_preserving_changes_do_not_warn():
    block = _decaying_variance_block()
    with warnings.catch_warnings():
        warnings.simplefilter("error", refode.errors.RefodeWarning)
        for family, k, method in (("piecewise_constant", 2, "projection"),
                                  ("fem_linear", 2, "interpolation"),
                                  ("piecewise_constant", 1, "interpolation")):
            moved = block.rebased(refode.basis(family, k), "rk4", 3, method)
            assert moved.nonpositive_variances() == []
            out, _ = moved.forward(_images(), train=False)
            assert np.isfinite(out).all()


def test_positive_policy_keeps_variances_positive_where_projection_does_not():
    block = _decaying_variance_block()
    line = refode.basis("legendre", 2)
    with pytest.warns(refode.errors.RefodeWarning):
        plain = block.rebased(line, "rk4", 1, "projection")
    for family, k in (("legendre", 2), ("fem_linear", 2), ("piecewise_constant", 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", refode.errors.RefodeWarning)
            moved = block.rebased(refode.basis(family, k), "rk4", 1, "projection", "positive")
        assert moved.nonpositive_variances() == []
        assert np.isfinite(moved.forward(_images(), train=False)[0]).all()
    moved = block.rebased(line, "rk4", 1, "projection", "positive")
    for name in ("bn1.mean", "bn2.mean", "conv1.weight"):  # means and weights: plain L2
        table = moved.state if name in moved.state else moved.params
        plain_table = plain.state if name in plain.state else plain.params
        np.testing.assert_array_equal(table[name], plain_table[name])
    # onto pieces the log projection is the geometric mean of each pair: exp(mean log) - eps
    halves = block.rebased(refode.basis("piecewise_constant", 2), "euler", 2, "projection",
                           "positive").state["bn1.var"][:, 0]
    var = np.array([1.0, 0.4, 0.05, 0.01]) + EPS
    np.testing.assert_allclose(halves, np.sqrt(var[0::2] * var[1::2]) - EPS, rtol=1e-13)


def test_recalibrated_statistics_are_the_averaged_batch_statistics_fitted():
    block = _block("piecewise_constant", 2, "euler", 2)
    xs = [_images(1), _images(2)[:2]]  # batches of 3 and 2 images
    records = [block.batch_statistics(x)[1] for x in xs]
    before = {k: v.copy() for k, v in block.state.items()}
    state = block.recalibrated(records, [3, 2])
    assert all(np.array_equal(block.state[k], before[k]) for k in before)  # not changed
    for i, name in enumerate(STATS):  # Euler, N = K pieces: one stage sample per piece
        want = np.stack([0.6 * np.asarray(a[i]) + 0.4 * np.asarray(b[i])
                         for a, b in zip(*records)])
        np.testing.assert_allclose(state[name], want, rtol=1e-14, atol=1e-15)
    h, stages = block.batch_statistics(xs[0])
    assert len(stages) == 2 and h.shape == xs[0].shape
    np.testing.assert_array_equal(stages[0][0], records[0][0][0])  # deterministic


def test_evaluation_forward_is_one_kernel_per_conv_and_bitwise_unfused(monkeypatch):
    """In evaluation mode :meth:`ConvRate.forward` runs BN -> ReLU -> conv as one kernel
    per conv (no ``bn_relu`` call) and gives bitwise what the unfused path gives."""
    block = _block("fem_linear", 2, "euler", 1)
    x = _images(9)
    theta = {name: c[0] for name, c in {**block.params, **block.state}.items()}
    rate = ConvRate(train=False, scale=0.5)
    want, _ = rate.forward_save(0.0, x, theta)
    calls = []
    monkeypatch.setattr(_ops, "bn_relu", lambda *a, **k: calls.append(1))
    np.testing.assert_array_equal(rate.forward(0.0, x, theta), want)
    assert not calls


@pytest.mark.parametrize("train", [True, False])
def test_forward_stats_is_bitwise_forward_with_the_batch_statistics(train):
    block = _block("fem_linear", 2, "euler", 1)
    x = _images(9)
    coefficients = dict(block.params) if train else {**block.params, **block.state}
    theta = {name: c[0] for name, c in coefficients.items()}
    rate = ConvRate(train)
    k, stats, saved = rate.forward_stats(0.0, x, theta)
    np.testing.assert_array_equal(k, rate.forward(0.0, x, theta))
    assert saved is None and not hasattr(rate, "record")
    k2, _, saved = rate.forward_stats(0.0, x, theta, save=True)
    want_k, want_saved = rate.forward_save(0.0, x, theta)
    np.testing.assert_array_equal(k2, want_k)
    for got, want in zip(saved, want_saved):
        np.testing.assert_array_equal(got, want)
    if not train:
        assert stats is None
        return
    _, m1, v1 = _ops.bn_relu(x, theta["bn1.gamma"], theta["bn1.beta"], None, None, True)
    np.testing.assert_array_equal(stats[0], m1)
    np.testing.assert_array_equal(stats[1], v1)


@pytest.mark.parametrize("train", [True, False])
def test_backward_uses_its_cache_up(train):
    from refode.errors import RefodeError

    block = _block("fem_linear", 2, "euler", 4, checkpoint="binomial", slots=2)
    x, w = _images(9), np.random.default_rng(10).standard_normal(SHAPE)
    _, cache = block.forward(x, train=train)
    dx, _ = block.backward(cache, w)
    assert np.all(np.isfinite(dx))
    with pytest.raises(RefodeError, match="run the forward"):
        block.backward(cache, w)


def test_evaluation_forward_keeps_no_stage_states():
    import tracemalloc

    block = _block("fem_linear", 2, "rk4", 8)  # checkpoint="all": 32 stages in training
    rng = np.random.default_rng(11)
    big = (8, SHAPE[1], 16, 16)  # states far above the bookkeeping
    x, w = rng.standard_normal(big), rng.standard_normal(big)
    block.forward(x, train=False)  # compiled
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        h, cache = block.forward(x, train=False)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept <= 4 * x.nbytes  # output + the rate's conv grids, not 32 stages x 4 states
    dx, g = block.backward(cache, w)  # recomputed: the gradient of the evaluation-mode map
    want = refode.gradient(ConvRate(False), x, {**block.params, **block.state}, block.basis, w,
                           scheme="rk4", n_steps=8)
    np.testing.assert_array_equal(dx, want[0])
    for name in g:
        np.testing.assert_array_equal(g[name], want[1][name])
