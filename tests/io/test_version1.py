"""Files of format version 1 (written before the architecture options) keep their meaning.

``tests/data/v1_*.h5`` and ``v1_expected.npz`` were made by ``tests/data/make_v1.py`` with
the code of format version 1 (commit 5ac7b89), before the options existed: they load
with a head ReLU, symmetric padding, unit residual scales and layer-norm eps 1e-5, and
evaluate as they did then, within the golden check's default tolerance (``|a - b| <=
1e-13 + 1e-9 |b|``): since issue 11 the ContinuousNet's stride-1 convolutions and fused
batch norm + ReLU sum in another order, and the tagger's softmax takes its
exponentials from NumPy's vectorised ``exp`` (not libm's) and its projections from one
GEMM over all rows (round-off of about 1e-16 relative).
"""
import json
import pathlib

import h5py
import numpy as np
import pytest

import refode
from refode.cli import main
from refode.io import golden

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "v1_expected.npz") as z:
        return {k: z[k] for k in z.files}


def test_the_files_are_version_1_without_the_option_keys():
    for name in ("v1_continuousnet.h5", "v1_tagger.h5"):
        with h5py.File(DATA / name, "r") as fh:
            assert fh.attrs["format_version"] == 1
            cfg = json.loads(fh.attrs["config"])
            assert not {"head_activation", "padding", "rate_scale", "ln_eps"} & set(cfg)


#: the golden check's default tolerance (``refode check``): ``atol + rtol |golden|``.
ATOL, RTOL = 1e-13, 1e-9


def _same(got, want, what=""):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def test_continuousnet_of_version_1_evaluates_as_before(expected):
    net = refode.load(DATA / "v1_continuousnet.h5")
    assert (net.head_activation, net.padding, net.rate_scale, net.stitch_scale) == (
        "relu", "symmetric", 1.0, 1.0)
    x, y = expected["net_x"], expected["net_y"]
    _same(net.forward(x, train=False), expected["net_eval_logits"])
    _same(net.forward(x, train=True, update_state=False), expected["net_train_logits"])
    loss, grads = net.loss_and_gradients(x, y, update_state=False)
    _same(loss, expected["net_loss"])
    assert grads.keys() == {k[len("net_grad/"):] for k in expected if k.startswith("net_grad/")}
    for name, g in grads.items():
        _same(g, expected[f"net_grad/{name}"], name)


def test_tagger_of_version_1_evaluates_as_before(expected):
    tag = refode.load(DATA / "v1_tagger.h5")
    assert tag.ln_eps == 1e-5
    _same(tag.forward(expected["tag_ids"]), expected["tag_logits"])
    loss, grads = tag.loss_and_gradients(expected["tag_ids"], expected["tag_tags"])
    _same(loss, expected["tag_loss"])
    assert grads.keys() == {k[len("tag_grad/"):] for k in expected if k.startswith("tag_grad/")}
    for name, g in grads.items():
        _same(g, expected[f"tag_grad/{name}"], name)


def test_version_1_golden_file_still_checks_against_itself_and_a_fresh_computation(tmp_path):
    path = DATA / "v1_golden_net.h5"
    assert main(["check", str(path), str(path)]) == 0
    with h5py.File(path, "r") as fh:
        x, y = fh["inputs/x"][()], fh["inputs/y"][()]
    fresh = tmp_path / "fresh.h5"
    golden.write(fresh, refode.load(path), x, y, mode="train")
    assert main(["check", str(path), str(fresh)]) == 0  # the default tolerance (see ATOL)


def test_resaving_a_version_1_file_writes_version_2_with_the_same_meaning(tmp_path, expected):
    net = refode.load(DATA / "v1_continuousnet.h5")
    refode.save(net, tmp_path / "v2.h5")
    with h5py.File(tmp_path / "v2.h5", "r") as fh:
        assert fh.attrs["format_version"] == 2
        assert json.loads(fh.attrs["config"])["head_activation"] == "relu"
    again = refode.load(tmp_path / "v2.h5")
    _same(again.forward(expected["net_x"]), expected["net_eval_logits"])


def test_version_1_config_with_a_version_2_key_is_refused(tmp_path):
    path = tmp_path / "mixed.h5"
    with h5py.File(DATA / "v1_continuousnet.h5", "r") as src, h5py.File(path, "w") as dst:
        for key in src:
            src.copy(key, dst)
        dst.attrs.update(src.attrs)
        cfg = json.loads(src.attrs["config"])
        cfg["padding"] = "same"
        dst.attrs["config"] = json.dumps(cfg)
    with pytest.raises(refode.errors.FormatError, match="unknown configuration keys padding"):
        refode.load(path)
