"""The encoder rates: VJP vs complex-step JVP (dot product), finite differences, masks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refode.errors import RefodeError, ShapeError
from refode.models.transformer import PaperEncoderRate, PreLNEncoderRate, RATES

from .tagger_setup import warm
from .plain_rate import PlainRate

#: central finite-difference step and relative tolerance (float64).
FD_STEP, FD_RTOL = 1e-6, 1e-6
#: complex step and the tolerance of the dot-product identity.
COMPLEX_STEP, DOT_RTOL = 1e-30, 1e-10
#: tolerance between the cpu and reference kernels.
BACKEND_RTOL = 1e-12
#: paper configuration and its parameters per basis function (paper, section 5).
PAPER_WIDTH, PAPER_FFN, PAPER_COUNT = 128, 128, 99_072
WIDTH, FFN = 8, 6


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warm()


def _case(kind, heads, bias, batch, lengths, seed, backend="cpu"):
    """A rate with a padding mask from ``lengths`` (None: no mask), its inputs and cotangent."""
    rng = np.random.default_rng(seed)
    length = max(lengths)
    rate = RATES[kind](WIDTH, heads, FFN, attention_bias=bias, backend=backend)
    mask = None
    if min(lengths) < length:
        mask = np.arange(length)[None, :] >= np.array(lengths)[:, None]
        rate = rate.with_mask(mask)
    theta = {k: v[0] + 0.3 * rng.standard_normal(v.shape[1:]) for k, v in rate.init(rng, 1).items()}
    h = rng.standard_normal((batch, length, WIDTH))
    return rate, theta, h, rng.standard_normal(h.shape), mask


cases = st.fixed_dictionaries({
    "kind": st.sampled_from(sorted(RATES)),
    "heads": st.sampled_from([1, 2]),
    "bias": st.booleans(),
    "lengths": st.lists(st.integers(1, 5), min_size=2, max_size=3),
    "seed": st.integers(0, 2**16),
    "padded": st.booleans(),
})


def _unpack(c, backend="cpu"):
    lengths = c["lengths"] if c["padded"] else [max(c["lengths"])] * len(c["lengths"])
    return _case(c["kind"], c["heads"], c["bias"], len(lengths), lengths, c["seed"], backend)


def _pair(rate, h, theta, a, dh, dtheta, eps):
    moved = {k: theta[k] + eps * dtheta[k] for k in theta}
    return np.sum(a * rate.forward(0.0, h + eps * dh, moved))


@given(c=cases)
def test_vjp_matches_finite_differences_per_array(c):
    rate, theta, h, a, _ = _unpack(c)
    a_h, a_theta = rate.vjp(0.0, h, theta, a)
    rng = np.random.default_rng(c["seed"] + 1)
    zeros = {k: np.zeros_like(v) for k, v in theta.items()}
    for name in ["h", *theta]:
        dh = rng.standard_normal(h.shape) if name == "h" else np.zeros_like(h)
        dtheta = dict(zeros)
        if name != "h":
            dtheta[name] = rng.standard_normal(theta[name].shape)
        fd, fd_2h = ((_pair(rate, h, theta, a, dh, dtheta, step)
                      - _pair(rate, h, theta, a, dh, dtheta, -step)) / (2 * step)
                     for step in (FD_STEP, 2 * FD_STEP))
        exact = np.sum(a_h * dh) + sum(np.sum(a_theta[k] * dtheta[k]) for k in theta)
        # FD_RTOL relative (floor 1e-3), plus twice the step-2h estimate of the central
        # difference's own error (a wrong VJP still fails: both differences converge)
        allowed = FD_RTOL * max(abs(exact), 1e-3) + 2 * abs(fd - fd_2h)
        assert abs(fd - exact) <= allowed, (name, fd, exact)


@given(c=cases)
def test_vjp_dot_product_identity_with_complex_step(c):
    rate, theta, h, a, _ = _unpack(c, backend="reference")
    rng = np.random.default_rng(c["seed"] + 2)
    dh = rng.standard_normal(h.shape)
    dtheta = {k: rng.standard_normal(v.shape) for k, v in theta.items()}
    jvp = rate.forward(0.0, h + 1j * COMPLEX_STEP * dh,
                       {k: theta[k] + 1j * COMPLEX_STEP * dtheta[k] for k in theta}).imag
    lhs = np.sum(a * jvp) / COMPLEX_STEP
    a_h, a_theta = rate.vjp(0.0, h, theta, a)
    rhs = np.sum(a_h * dh) + sum(np.sum(a_theta[k] * dtheta[k]) for k in theta)
    assert abs(lhs - rhs) <= DOT_RTOL * max(abs(lhs), abs(rhs))


@given(c=cases)
def test_cpu_kernels_match_reference_kernels(c):
    cpu = _unpack(c)
    ref = _unpack(c, backend="reference")
    rate, theta, h, a, _ = cpu
    np.testing.assert_allclose(rate.forward(0.0, h, theta), ref[0].forward(0.0, h, theta),
                               rtol=BACKEND_RTOL, atol=BACKEND_RTOL)
    (ah, ath), (rh, rth) = rate.vjp(0.0, h, theta, a), ref[0].vjp(0.0, h, theta, a)
    np.testing.assert_allclose(ah, rh, rtol=BACKEND_RTOL, atol=BACKEND_RTOL * np.abs(rh).max())
    for k in theta:
        np.testing.assert_allclose(ath[k], rth[k], rtol=BACKEND_RTOL,
                                   atol=BACKEND_RTOL * np.abs(rth[k]).max())


@pytest.mark.parametrize("kind", sorted(RATES))
def test_padded_positions_have_zero_rate_and_do_not_influence_others(kind):
    lengths = [3, 5]
    rate, theta, h, a, mask = _case(kind, 2, False, 2, lengths, seed=3)
    r = rate.forward(0.0, h, theta)
    assert np.all(r[mask] == 0) and np.all(r[~mask] != 0)
    changed = h.copy()
    changed[mask] += 10.0  # anything in the padded rows
    np.testing.assert_array_equal(rate.forward(0.0, changed, theta)[~mask], r[~mask])
    a_h, _ = rate.vjp(0.0, h, theta, a)
    assert np.all(a_h[mask] == 0)


def test_unmasked_rate_differs_from_masked_rate():
    """The mask is applied: ignoring it (as the original did) changes the real rows."""
    rate, theta, h, _, mask = _case("paper", 1, False, 2, [2, 5], seed=4)
    unmasked = PaperEncoderRate(WIDTH, 1, FFN).forward(0.0, h, theta)
    assert not np.allclose(unmasked[~mask], rate.forward(0.0, h, theta)[~mask])


def test_paper_rate_has_99072_parameters_per_basis_function():
    rate = PaperEncoderRate(PAPER_WIDTH, 1, PAPER_FFN)
    assert rate.num_parameters() == PAPER_COUNT
    coefficients = rate.init(np.random.default_rng(0), 3)
    assert sum(v.size for v in coefficients.values()) == 3 * PAPER_COUNT
    biased = PreLNEncoderRate(PAPER_WIDTH, 4, PAPER_FFN, attention_bias=True)
    assert biased.num_parameters() == PAPER_COUNT + 4 * PAPER_WIDTH


def test_init_draws_every_basis_function_independently():
    coefficients = PaperEncoderRate(WIDTH, 2, FFN).init(np.random.default_rng(0), 3)
    w = coefficients["attn_weights"]
    assert not np.array_equal(w[0], w[1]) and not np.array_equal(w[1], w[2])


def test_bad_configurations_raise_with_the_fix():
    with pytest.raises(RefodeError, match="`heads`"):
        PaperEncoderRate(8, 3, 6)
    rate = PaperEncoderRate(8, 1, 6).with_mask(np.zeros((2, 4), dtype=bool))
    theta = {k: v[0] for k, v in rate.init(np.random.default_rng(0), 1).items()}
    with pytest.raises(ShapeError, match="with_mask"):
        rate.forward(0.0, np.zeros((2, 5, 8)), theta)


@pytest.mark.parametrize("train", [True, False])
def test_the_ode_block_takes_the_mask_per_call(train):
    """The padding mask is an argument of one forward (a rate built for the call), not
    an attribute of the long-lived block or rate."""
    import refode
    from refode.models.tagger_layers import EncoderODEBlock

    rng = np.random.default_rng(11)
    base = PaperEncoderRate(WIDTH, 1, FFN)
    basis = refode.basis("fem_linear", 2)
    block = EncoderODEBlock(base, base.init(rng, basis.n), basis, "midpoint", 2)
    x = rng.standard_normal((2, 3, WIDTH))
    w = rng.standard_normal(x.shape)
    mask = np.array([[False, False, True], [False, False, False]])
    h, cache = block.forward(x, train, mask=mask)
    masked = base.with_mask(mask)
    want = refode.odeint(masked, x, block.params, basis, scheme="midpoint", n_steps=2)
    np.testing.assert_array_equal(h, want)
    np.testing.assert_array_equal(h[0, 2], x[0, 2])   # a padded state never changes
    h_plain, plain_cache = block.forward(x, train)     # the next call: no mask
    np.testing.assert_array_equal(
        h_plain, refode.odeint(base, x, block.params, basis, scheme="midpoint", n_steps=2))
    assert base.mask is None and not hasattr(block, "mask")
    dx, grads = block.backward(cache, w)                # the cache keeps its call's mask
    want_dx, want_grads = refode.gradient(masked, x, block.params, basis, w,
                                          scheme="midpoint", n_steps=2)
    np.testing.assert_array_equal(dx, want_dx)
    for name in want_grads:
        np.testing.assert_array_equal(grads[name], want_grads[name])


@pytest.mark.parametrize("kind", sorted(RATES))
@pytest.mark.parametrize("checkpoint,slots", [("all", None), ("steps", None), ("binomial", 1)])
def test_saving_intermediates_is_bitwise_the_recomputing_vjp(kind, checkpoint, slots):
    import refode

    rate, _, h, _, _ = _case(kind, 2, True, 3, [4, 2, 3], seed=11)
    rng = np.random.default_rng(12)
    basis = refode.basis("fem_linear", 2)
    coefficients = rate.init(rng, basis.n)
    a = rng.standard_normal(h.shape)
    kwargs = {"scheme": "rk4", "n_steps": 3, "checkpoint": checkpoint}
    if slots:
        kwargs["slots"] = slots
    saved = refode.gradient(rate, h, coefficients, basis, a, **kwargs)
    plain = refode.gradient(PlainRate(rate), h, coefficients, basis, a, **kwargs)
    np.testing.assert_array_equal(saved[0], plain[0])
    assert np.any(saved[0] != 0.0)
    for name in coefficients:
        np.testing.assert_array_equal(saved[1][name], plain[1][name])
    k, kept = rate.forward_save(0.0, h, {n: c[0] for n, c in coefficients.items()})
    np.testing.assert_array_equal(k, rate.forward(0.0, h, {n: c[0] for n, c in coefficients.items()}))
    assert set(kept) == {"u", "s", "a", "qkv", "ctx", "v", "p", "e"}
