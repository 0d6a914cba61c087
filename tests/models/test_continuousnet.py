"""ContinuousNet: parameter count, gradients vs finite differences, thread determinism,
rediscretisation (refinement, compression)."""
import zlib

import numba
import numpy as np
import pytest

from refode.errors import RefodeError
from refode.models import ContinuousNet

from .convnet_setup import batch, convnet_compiled, convnet_env, relative_errors, tiny  # noqa: F401

pytestmark = pytest.mark.usefixtures("convnet_env")

#: the paper's count: fixed part and part per basis function.
PAPER_FIXED, PAPER_PER_K = 78_074, 97_216
#: (family, K, scheme, N) of the finite-difference checks; N is not a multiple of K.
FD_CASES = [(f, k, s, 3) for f, k in (("piecewise_constant", 2), ("fem_linear", 2),
                                      ("legendre", 2)) for s in ("euler", "midpoint", "rk4")]
#: central difference step, tolerance, and entries sampled per parameter array.
FD_STEP, FD_RTOL, FD_SAMPLES = 1e-6, 1e-6, 2
#: floor of :func:`relative_errors` for finite differences (their noise is ~1e-10 absolute).
FD_FLOOR = 1e-3


def test_paper_parameter_count():
    for k in range(1, 17):
        model = ContinuousNet(n_basis=k, n_steps=k)
        assert model.num_parameters() == PAPER_FIXED + PAPER_PER_K * k
        assert model.params["block3.conv1.weight"].shape == (k, 64, 64, 3, 3)
        assert model.state["block2.bn2.var"].shape == (k, 32)
    w = model.params["block1.conv1.weight"]  # K = 16: every piece drawn independently
    assert all(not np.array_equal(w[0], w[j]) for j in range(1, 16))
    np.testing.assert_array_equal(model.params["block1.bn1.gamma"], 1.0)
    np.testing.assert_array_equal(model.state["block1.bn1.var"], 1.0)
    assert model.params["stem_conv.weight"].std() == pytest.approx(np.sqrt(2 / 27), rel=0.2)


#: architecture options of the finite-difference checks (each with every case above).
FD_OPTIONS = [{}, {"head_activation": "relu", "padding": "same", "rate_scale": 0.6,
                   "stitch_scale": 1.7}]


@pytest.mark.parametrize("options", FD_OPTIONS, ids=("default", "relu-same-scaled"))
@pytest.mark.parametrize("family,k,scheme,n", FD_CASES)
def test_gradients_match_finite_differences(family, k, scheme, n, options):
    rng = np.random.default_rng(zlib.crc32(f"{family}/{scheme}".encode()))
    model = tiny(basis=family, n_basis=k, scheme=scheme, n_steps=n, seed=3, **options)
    x, y = batch(1)
    state = {k_: v.copy() for k_, v in model.state.items()}
    _, grads = model.loss_and_gradients(x, y, update_state=False)
    for k_, v in model.state.items():
        np.testing.assert_array_equal(v, state[k_])
    params = model.params
    assert grads.keys() == params.keys()
    got, want = {}, {}
    for name, p in params.items():
        assert grads[name].shape == p.shape
        flat = rng.choice(p.size, size=min(FD_SAMPLES, p.size), replace=False)
        fd = []
        for i in flat:
            idx = np.unravel_index(i, p.shape)
            old = p[idx]
            p[idx] = old + FD_STEP
            up = model.loss(x, y)
            p[idx] = old - FD_STEP
            down = model.loss(x, y)
            p[idx] = old
            fd.append((up - down) / (2 * FD_STEP))
        got[name], want[name] = grads[name].ravel()[flat], np.array(fd)
    errors = relative_errors(got, want, FD_FLOOR)
    assert max(errors.values()) < FD_RTOL, sorted(errors.items(), key=lambda e: -e[1])[:3]


def test_training_step_updates_state_and_eval_does_not():
    model = tiny(n_basis=2, n_steps=2)
    x, y = batch(2)
    before = {k: v.copy() for k, v in model.state.items()}
    model.forward(x, train=False)
    model.loss_and_gradients(x, y, train=False)
    model.forward(x, train=True, update_state=False)
    for k, v in model.state.items():
        np.testing.assert_array_equal(v, before[k])
    model.loss_and_gradients(x, y)
    changed = [k for k, v in model.state.items() if not np.array_equal(v, before[k])]
    assert sorted(changed) == sorted(before)


def test_return_logits_gives_the_logits_of_the_loss():
    model, twin = tiny(n_basis=2, n_steps=2), tiny(n_basis=2, n_steps=2)
    x, y = batch(4)
    loss, grads = model.loss_and_gradients(x, y)
    loss2, grads2, logits = twin.loss_and_gradients(x, y, return_logits=True)
    assert loss2 == loss and all(np.array_equal(grads2[k], g) for k, g in grads.items())
    assert all(np.array_equal(twin.state[k], s) for k, s in model.state.items())
    np.testing.assert_array_equal(logits, tiny(n_basis=2, n_steps=2).forward(x, train=True))
    assert logits.shape == (len(y), 5)


def test_bitwise_identical_with_one_and_two_threads():
    model = tiny(basis="fem_linear", n_basis=3, scheme="rk4", n_steps=2, seed=5)
    x, y = batch(3)
    results = []
    saved = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            logits = {m: model.forward(x, train=m, update_state=False) for m in (True, False)}
            grads = {m: model.loss_and_gradients(x, y, train=m, update_state=False)[1]
                     for m in (True, False)}
            results.append((logits, grads))
    finally:
        numba.set_num_threads(saved)
    (l1, g1), (l2, g2) = results
    for m in (True, False):
        np.testing.assert_array_equal(l1[m], l2[m])
        for k in g1[m]:
            np.testing.assert_array_equal(g1[m][k], g2[m][k])


def _trained(model, seed=4):
    x, y = batch(seed)
    model.loss_and_gradients(x, y)  # non-trivial running statistics
    return model


def test_refinement_leaves_outputs_unchanged():
    x, _ = batch(5)
    model = _trained(tiny(n_basis=2, n_steps=4))
    fine = model.rediscretize(n_basis=4)
    assert fine.basis.n == 4 and model.basis.n == 2
    np.testing.assert_array_equal(fine.forward(x), model.forward(x))
    np.testing.assert_array_equal(fine.forward(x, train=True, update_state=False),
                                  model.forward(x, train=True, update_state=False))
    fem = _trained(tiny(basis="fem_linear", n_basis=2, scheme="midpoint", n_steps=3))
    fem_fine = fem.rediscretize(n_basis=3)  # nodal refinement (midpoint node)
    np.testing.assert_allclose(fem_fine.forward(x), fem.forward(x), rtol=0, atol=1e-13)
    leg = _trained(tiny(basis="legendre", n_basis=2, scheme="rk4", n_steps=2))
    np.testing.assert_allclose(leg.rediscretize(n_basis=4).forward(x), leg.forward(x),
                               rtol=0, atol=1e-13)


def test_compression_halves_the_depth_dependent_count():
    model = ContinuousNet(n_basis=16, n_steps=16, seed=1)
    small = model.rediscretize(n_basis=8, n_steps=8)
    assert small.num_parameters() == PAPER_FIXED + PAPER_PER_K * 8
    assert model.num_parameters() == PAPER_FIXED + PAPER_PER_K * 16
    for name, big in model.params.items():
        new = small.params[name]
        if name.startswith("block"):
            np.testing.assert_allclose(new, 0.5 * (big[0::2] + big[1::2]), rtol=0, atol=1e-15)
        else:
            np.testing.assert_array_equal(new, big)
    assert small.state["block1.bn1.var"].shape == (8, 16)
    assert (small.scheme, small.n_steps) == ("euler", 8)


def test_rediscretize_change_of_family_scheme_and_interpolation():
    x, _ = batch(6)
    model = _trained(tiny(basis="fem_linear", n_basis=3, n_steps=4))
    interp = model.rediscretize(basis="piecewise_constant", n_basis=2, scheme="rk4",
                                n_steps=2, method="interpolation")
    assert interp.basis.family == "piecewise_constant" and interp.scheme == "rk4"
    assert np.all(np.isfinite(interp.forward(x)))
    np.testing.assert_array_equal(  # fem nodes 0, 1/2, 1; pc nodes 1/4, 3/4
        interp.params["block1.conv1.weight"][0],
        0.5 * model.params["block1.conv1.weight"][0]
        + 0.5 * model.params["block1.conv1.weight"][1])
    with pytest.raises(RefodeError, match="method"):
        model.rediscretize(method="nearest")


def test_recalibrate_refits_every_block_in_order_on_its_evaluation_input():
    x, _ = batch(7)
    model = _trained(tiny(n_basis=2, n_steps=2))
    new = model.rediscretize(basis="legendre", n_basis=2, scheme="rk4", n_steps=1,
                             stats="recalibrate", data=(x, None), batch_size=2)
    hs = [x[:2], x[2:]]
    for name, layer in new.network.layers.items():  # eval-mode inputs, earlier blocks refitted
        if name.startswith("block"):
            moved = model.network.layers[name].rebased(new.basis, "rk4", 1, "projection",
                                                   "recalibrate")
            want = moved.recalibrated([moved.batch_statistics(b)[1] for b in hs],
                                      [len(b) for b in hs])
            for key in want:
                np.testing.assert_array_equal(layer.state[key], want[key])
            assert not np.array_equal(layer.state["bn1.var"], moved.state["bn1.var"])
        hs = [layer.forward(b, False)[0] for b in hs]
    for name, value in model.params.items():  # weights: plain projection
        np.testing.assert_array_equal(new.params[name], model.rediscretize(
            basis="legendre", n_basis=2, scheme="rk4", n_steps=1).params[name])
    again = model.rediscretize(basis="legendre", n_basis=2, scheme="rk4", n_steps=1,
                               stats="recalibrate", data=x, batch_size=2)
    assert all(np.array_equal(again.state[k], new.state[k]) for k in new.state)


def test_recalibrate_after_a_nonpositive_variance_gives_nan_outputs_not_an_error():
    from refode.errors import RefodeWarning

    x, _ = batch(7)
    model = _trained(tiny(n_basis=2, n_steps=2))
    blocks = [name for name in model.network.layers if name.startswith("block")]
    assert len(blocks) >= 2
    first = model.network.layers[blocks[0]]
    state = dict(first.state)
    state["bn1.var"] = np.full_like(state["bn1.var"], -5.0)  # var + eps < 0 everywhere
    first.state = state
    # the second block's evaluation-mode input is not finite: its batch statistics are not
    h = x
    for name, layer in model.network.layers.items():
        if name == blocks[1]:
            break
        h = layer.forward(h, False)[0]
    assert not np.all(np.isfinite(h))
    hs = [h]
    second = model.network.layers[blocks[1]]
    with pytest.warns(RefodeWarning, match="kept their previous coefficients"):
        fitted = second.recalibrated([second.batch_statistics(h)[1] for h in hs], [len(x)])
    for key, value in fitted.items():  # channels without finite samples keep the old values
        assert np.all(np.isfinite(value))
        np.testing.assert_array_equal(value, second.state[key])
    second.state = fitted
    assert np.isnan(model.forward(x)).all()  # the upstream NaN reaches the logits


def test_rediscretize_statistics_policy_arguments_are_checked():
    model = tiny(n_basis=2, n_steps=2)
    x, _ = batch()
    with pytest.raises(RefodeError, match="stats"):
        model.rediscretize(stats="clip")
    with pytest.raises(RefodeError, match="needs `data`"):
        model.rediscretize(stats="recalibrate")
    with pytest.raises(RefodeError, match="only used by stats='recalibrate'"):
        model.rediscretize(stats="positive", data=x)
    with pytest.raises(RefodeError, match="no images"):
        model.rediscretize(stats="recalibrate", data=x[:0])


def test_check_batch_validates_images_and_labels_before_any_work():
    from refode.errors import ShapeError

    net = ContinuousNet(in_channels=2, n_classes=4, widths=(2, 3), n_basis=1, n_steps=1)
    assert (net.in_channels, net.n_classes) == (2, 4)
    x, y = net.check_batch(np.zeros((3, 2, 4, 4), np.float32), np.array([0, 3, 1], np.uint8))
    assert x.dtype == np.float64 and y.dtype == np.int64
    with pytest.raises(ShapeError, match="`x` has 1 channels"):
        net.check_batch(np.zeros((3, 1, 4, 4)), [0, 1, 2])
    with pytest.raises(RefodeError, match=r"`y` holds 1 label\(s\) outside \[0, 4\)"):
        net.check_batch(np.zeros((3, 2, 4, 4)), [0, 1, 4])
    # one image of 2 x 2: the second stage's batch norm sees 1 value per channel
    with pytest.raises(ShapeError, match="gives the last batch norm 1 value"):
        net.loss_and_gradients(np.zeros((1, 2, 2, 2)), [0])
    assert np.isfinite(net.loss(np.ones((1, 2, 2, 2)), [0], train=False))
