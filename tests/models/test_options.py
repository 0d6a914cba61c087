"""The architecture options of ContinuousNet and the tagger: what each one means."""
import numpy as np
import pytest

import refode
from refode.errors import RefodeError
from refode.io import layout
from refode.kernels import get
from refode.models import ContinuousNet, ContinuousTagger
from refode.models import _ops
from refode.models.layers import Conv

from .convnet_setup import batch, convnet_compiled, convnet_env, tiny  # noqa: F401

pytestmark = pytest.mark.usefixtures("convnet_env")


@pytest.mark.parametrize("size,k,stride,want", [(6, 3, 2, (0, 1)), (7, 3, 2, (1, 1)),
                                                (6, 3, 1, (1, 1)), (6, 1, 2, (0, 0)),
                                                (5, 1, 2, (0, 0)), (8, 5, 2, (1, 2))])
def test_same_padding_is_flax_rule(size, k, stride, want):
    assert _ops.same_padding(size, k, stride) == want


def test_same_padding_conv_and_vjp_equal_the_definition_on_the_padded_input():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    conv = Conv(w, 2, "same")
    y, cache = conv.forward(x, True)
    xpad = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    want = np.empty((2, 4, 3, 3))
    get("conv2d", "reference")(xpad, w, 2, 0, want)
    np.testing.assert_allclose(y, want, rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(y.shape)
    dx, grads = conv.backward(cache, g)
    dxpad, dw = np.empty_like(xpad), np.empty_like(w)
    get("conv2d.conv2d_vjp", "reference")(xpad, w, g, 2, 0, dxpad, dw)
    np.testing.assert_allclose(dx, dxpad[:, :, :6, :6], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(grads["weight"], dw, rtol=1e-13, atol=1e-13)
    # symmetric padding would read a different window: the two modes differ
    sym, _ = Conv(w, 2, "symmetric").forward(x, True)
    assert not np.allclose(sym, y)


def test_default_head_has_no_activation_and_relu_adds_one():
    x, _ = batch(0)
    plain, relu = tiny(n_basis=2, n_steps=2, seed=1), tiny(n_basis=2, n_steps=2, seed=1,
                                                           head_activation="relu")
    assert "head_relu" not in plain.network.layers and "head_relu" in relu.network.layers
    # the same weights: the head BN output goes straight to the pool
    bn_out = {}
    for model in (plain, relu):
        h = x
        for name, layer in model.network.layers.items():
            h, _ = layer.forward(h, False)
            if name == "head_bn":
                bn_out[id(model)] = h
                break
    pooled = bn_out[id(plain)].mean(axis=(2, 3))
    dense = plain.network.layers["dense"].params
    np.testing.assert_allclose(plain.forward(x), pooled @ dense["weight"].T + dense["bias"],
                               rtol=1e-13, atol=1e-13)
    pooled_relu = np.maximum(bn_out[id(relu)], 0).mean(axis=(2, 3))
    np.testing.assert_allclose(relu.forward(x), pooled_relu @ dense["weight"].T + dense["bias"],
                               rtol=1e-13, atol=1e-13)


def test_rate_scale_zero_makes_every_block_the_identity_and_scales_the_step():
    x, _ = batch(1)
    zero = tiny(n_basis=2, n_steps=2, rate_scale=0.0, seed=2)
    h = x
    for name, layer in zero.network.layers.items():
        out, _ = layer.forward(h, False)
        if name.startswith("block"):
            np.testing.assert_array_equal(out, h)
        h = out
    # Euler, one step: h1 = h0 + s * R, so the increment is linear in the scale
    nets = {s: tiny(n_basis=1, n_steps=1, rate_scale=s, seed=2) for s in (1.0, 0.5)}
    incs = {}
    for s, model in nets.items():
        h = x
        for name, layer in model.network.layers.items():
            out, _ = layer.forward(h, False)
            if name == "block1":
                incs[s] = out - h
                break
            h = out
    np.testing.assert_allclose(incs[0.5], 0.5 * incs[1.0], rtol=1e-13, atol=1e-15)


def test_stitch_scale_scales_the_branch_only():
    x, _ = batch(2)
    models = {s: tiny(n_basis=1, n_steps=1, stitch_scale=s, seed=4) for s in (1.0, 0.25, 0.0)}
    outs = {}
    for s, model in models.items():
        h, _ = model.network.layers["stem_bn"].forward(
            model.network.layers["stem_conv"].forward(x, False)[0], False)
        h = np.maximum(h, 0)
        outs[s] = (h, model.network.layers["stitch1"].forward(h, False)[0])
    h = outs[0.0][0]
    np.testing.assert_array_equal(outs[0.0][1], h)          # identity shortcut, no branch
    branch = outs[1.0][1] - h
    np.testing.assert_allclose(outs[0.25][1], h + 0.25 * branch, rtol=1e-13, atol=1e-14)


def test_tagger_ln_eps_is_used_by_every_layer_norm():
    ids = np.array([[1, 2, 3, 4]])
    a = ContinuousTagger(7, 3, width=4, heads=1, ffn=3, n_basis=1, seed=0, ln_eps=1e-6)
    b = ContinuousTagger(7, 3, width=4, heads=1, ffn=3, n_basis=1, seed=0, ln_eps=1e-6)
    assert np.array_equal(a.forward(ids), b.forward(ids))
    c = ContinuousTagger(7, 3, width=4, heads=1, ffn=3, n_basis=1, seed=0, ln_eps=10.0)
    assert not np.allclose(a.forward(ids), c.forward(ids))
    assert a.rediscretize(n_basis=2).ln_eps == 1e-6
    assert a.network.layers["norm"].eps == 1e-6 and a.rate.with_mask(None).ln_eps == 1e-6


@pytest.mark.parametrize("kw,match", [
    (dict(head_activation="gelu"), "head_activation"), (dict(padding="valid"), "padding"),
    (dict(rate_scale=float("nan")), "rate_scale"), (dict(stitch_scale="x"), "stitch_scale"),
    (dict(rate_scale=True), "rate_scale")])
def test_bad_options_raise_naming_the_option(kw, match):
    with pytest.raises(RefodeError, match=match):
        ContinuousNet(in_channels=1, n_classes=2, widths=(2,), n_basis=1, n_steps=1, **kw)


@pytest.mark.parametrize("eps", [0.0, -1e-6, float("inf"), "a"])
def test_bad_ln_eps_raises(eps):
    with pytest.raises(RefodeError, match="ln_eps"):
        ContinuousTagger(7, 3, width=4, heads=1, ffn=3, n_basis=1, ln_eps=eps)


def test_options_survive_save_load_rediscretize_and_are_in_the_config(tmp_path):
    opts = dict(head_activation="relu", padding="same", rate_scale=0.5, stitch_scale=0.25)
    net = tiny(n_basis=2, n_steps=2, **opts)
    _, cfg = layout.config_of(net)
    assert {k: cfg[k] for k in opts} == opts
    refode.save(net, tmp_path / "n.h5")
    for model in (refode.load(tmp_path / "n.h5"), net.rediscretize(n_basis=1, n_steps=3)):
        assert {k: getattr(model, k) for k in opts} == opts
    x, _ = batch(3)
    np.testing.assert_array_equal(refode.load(tmp_path / "n.h5").forward(x), net.forward(x))
    tag = ContinuousTagger(7, 3, width=4, heads=2, ffn=3, n_basis=2, ln_eps=1e-6)
    refode.save(tag, tmp_path / "t.h5")
    assert refode.load(tmp_path / "t.h5").ln_eps == 1e-6


def test_info_shows_the_options(tmp_path, capsys):
    from refode.cli import main

    refode.save(tiny(n_basis=1, n_steps=1, padding="same", stitch_scale=0.5), tmp_path / "n.h5")
    assert main(["info", str(tmp_path / "n.h5")]) == 0
    out = capsys.readouterr().out
    assert "architecture: head_activation none  padding same  rate_scale 1.0  stitch_scale 0.5" in out
    assert "format version 2" in out
