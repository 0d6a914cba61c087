"""Run directories of the original Stateful ODE-Nets code (refode/io/statefulodenets.py).

The acceptance fixtures (checkpoints and outputs of the original code) are read from
``$REFODE_STATEFULODENETS`` (default ``<repo>/../shared/data/statefulodenets``); the tests
that need them are skipped when the folder is absent.
"""
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import refode
from refode import cli
from refode.errors import FormatError, RefodeError, RefodeWarning
from refode.io import _flax_msgpack as fm
from refode.io import from_statefulodenets, to_statefulodenets
from refode.io._statefulodenets_layout import (CONV, COPY, DENSE, OUT, QKV, original_shape,
                                               to_original, to_refode)
from refode.models import ContinuousNet, ContinuousTagger

FIXTURES = Path(os.environ.get("REFODE_STATEFULODENETS",
                               Path(__file__).resolve().parents[2].parent
                               / "shared" / "data" / "statefulodenets"))
needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "classifier" / "model.json").is_file(),
    reason=f"original-code fixtures not found at {FIXTURES} (set REFODE_STATEFULODENETS)")
#: the latest checkpoint of each fixture.
CHECKPOINTS = {"classifier": "checkpoint_2", "tagger": "checkpoint_1999"}
#: acceptance: max |refode - original| / max |original| per dtype.
RTOL = {"float64": 1e-12, "float32": 1e-5}


def log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def outputs(model, family):
    """What the original's outputs.npz holds, computed by refode (float64)."""
    inputs = np.load(FIXTURES / family / "inputs.npz")
    if family == "classifier":
        x = inputs["images"].astype(model.dtype).transpose(0, 3, 1, 2)   # NHWC -> NCHW
        return log_softmax(model.forward(x, train=False))
    return np.asarray(model.forward(inputs["ids"].astype(np.int64), train=False), np.float64)


def relative_error(got, want):
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def copy_run(family, dst):
    """A writable copy of a fixture run directory."""
    dst.mkdir()
    for f in (FIXTURES / family).iterdir():
        shutil.copyfile(f, dst / f.name)
    return dst


# ----------------------------------------------------------------- layouts
@pytest.mark.parametrize("kind, shape", [(CONV, (8, 4, 3, 3)), (DENSE, (10, 16)),
                                         (COPY, (5,)), (QKV, (16, 16)), (OUT, (16, 16))])
def test_layout_transforms_invert_each_other(kind, shape, rng):
    a = rng.standard_normal(original_shape(kind, shape, heads=2))
    assert to_refode(kind, a).shape == shape
    np.testing.assert_array_equal(to_original(kind, to_refode(kind, a), heads=2), a)


def test_attention_kernels_slice_heads_as_refode(rng):
    d, heads = 6, 3
    x = rng.standard_normal((2, 4, d))
    kernel = rng.standard_normal((d, heads, d // heads))           # Flax query kernel
    flax_q = np.einsum("bld,dhj->blhj", x, kernel)
    refode_q = x @ to_refode(QKV, kernel).T                        # PyTorch (out, in)
    for h in range(heads):                                          # head h = features h*dh..
        np.testing.assert_allclose(refode_q[..., h * 2:(h + 1) * 2], flax_q[..., h, :],
                                   rtol=1e-14)
    out = rng.standard_normal((heads, d // heads, d))               # Flax out kernel
    ctx = rng.standard_normal((2, 4, heads, d // heads))
    np.testing.assert_allclose(ctx.reshape(2, 4, d) @ to_refode(OUT, out).T,
                               np.einsum("blhj,hjd->bld", ctx, out), rtol=1e-13)


def _original_theta(name, nodes, t):
    """The original's basis_functions.py formulas (theta(t) of node values)."""
    k = len(nodes)
    if name == "poly_linear":
        return nodes[0] + nodes[1] * t
    if name == "piecewise_constant" or (name == "fem_linear" and k == 1):
        return nodes[min(int(k * t), k - 1)]
    n_elem = k - 1 if name == "fem_linear" else k // 2
    e = min(int(n_elem * t), n_elem - 1)
    phi = (t - e / n_elem) * n_elem
    left, right = (e, e + 1) if name == "fem_linear" else (2 * e, 2 * e + 1)
    return nodes[right] * phi + nodes[left] * (1 - phi)


@pytest.mark.parametrize("name, k", [("piecewise_constant", 3), ("fem_linear", 4),
                                     ("fem_linear", 1), ("piecewise_linear", 4),
                                     ("poly_linear", 2)])
def test_refode_bases_with_the_same_node_order_are_the_originals(name, k, rng):
    nodes = rng.standard_normal(k)
    family = "piecewise_constant" if (name, k) == ("fem_linear", 1) else name
    basis = refode.basis(family, k)
    for t in (0.0, 0.1, 0.37, 0.6, 0.93):
        assert basis.evaluate(np.array([t]))[0] @ nodes == pytest.approx(
            _original_theta(name, nodes, t), rel=1e-13, abs=1e-15)


# ----------------------------------------------------------------- acceptance
@needs_fixtures
@pytest.mark.parametrize("family", ["classifier", "tagger"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_converted_fixtures_reproduce_the_originals_outputs(family, dtype):
    model = from_statefulodenets(FIXTURES / family, dtype=dtype)
    assert model.dtype == np.dtype(dtype)
    want = np.load(FIXTURES / family / "outputs.npz")[dtype]
    got = outputs(model, family)
    assert got.shape == want.shape
    assert relative_error(got, want) < RTOL[dtype]


@needs_fixtures
def test_converted_options_and_discretization():
    net = from_statefulodenets(FIXTURES / "classifier")
    assert isinstance(net, ContinuousNet)
    assert (net.head_activation, net.padding) == ("none", "same")
    assert (net.rate_scale, net.stitch_scale) == (1.0, 0.25)
    assert (net.basis.family, net.basis.n, net.scheme, net.n_steps) == (
        "piecewise_constant", 4, "euler", 4)          # N = n_step 2 * 2 ** 1 refinement
    tagger = from_statefulodenets(FIXTURES / "tagger")
    assert isinstance(tagger, ContinuousTagger)
    assert (tagger.ln_eps, tagger.padding_id, tagger.rate_kind) == (1e-6, 0, "paper")
    assert (tagger.rate.width, tagger.rate.heads, tagger.rate.ffn) == (16, 2, 32)
    assert (tagger.basis.n, tagger.n_steps) == (2, 2)


@needs_fixtures
def test_an_earlier_checkpoint_by_step():
    net = from_statefulodenets(FIXTURES / "classifier", step=1)
    assert (net.basis.n, net.n_steps) == (2, 4)       # before the refinement: K = 2
    with pytest.raises(FormatError, match="has no checkpoint_5; use one of the steps 1, 2"):
        from_statefulodenets(FIXTURES / "classifier", step=5)


def test_dtype_is_validated(tmp_path):
    with pytest.raises(RefodeError, match="`dtype` must be float64 or float32"):
        from_statefulodenets(tmp_path, dtype="float16")


# ----------------------------------------------------------------- export
@needs_fixtures
@pytest.mark.parametrize("family", ["classifier", "tagger"])
def test_export_writes_the_originals_tree_back(family, tmp_path):
    model = from_statefulodenets(FIXTURES / family)
    to_statefulodenets(model, tmp_path / "run", step=3)
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint_3", "model.json",
                                                    "optimizer_hyper_params.json"]
    ours = fm.flatten(fm.decode((tmp_path / "run" / "checkpoint_3").read_bytes(), "ours"))
    theirs = fm.flatten(fm.decode((FIXTURES / family / CHECKPOINTS[family]).read_bytes(), "t"))
    assert set(ours) == set(theirs)     # optimizer state included (zeros here)
    for key, value in theirs.items():
        if not key.startswith("optimizer/state") and isinstance(value, np.ndarray):
            assert ours[key].dtype == value.dtype and np.array_equal(ours[key], value), key
    again = from_statefulodenets(tmp_path / "run")
    for name, value in {**model.params, **model.state}.items():
        np.testing.assert_array_equal({**again.params, **again.state}[name], value)
    cls = json.loads((FIXTURES / family / "model.json").read_text())
    mine = json.loads((tmp_path / "run" / "model.json").read_text())
    assert list(mine) == list(cls)


@pytest.mark.parametrize("make", [
    lambda: ContinuousNet(3, 10, (4, 8, 16), "fem_linear", 3, "rk4", 3, seed=4,
                          head_activation="none", padding="same", rate_scale=0.5,
                          stitch_scale=0.2),
    lambda: ContinuousNet(3, 10, (2, 4, 8), "piecewise_linear", 4, "midpoint", 2, seed=5,
                          head_activation="none", padding="same"),
    lambda: ContinuousTagger(20, 6, width=8, heads=2, ffn=12, basis="poly_linear", n_basis=2,
                             scheme="rk4_38", n_steps=3, seed=6, ln_eps=1e-6),
])
def test_export_then_import_keeps_outputs(make, tmp_path, rng):
    model = make()
    if isinstance(model, ContinuousNet):
        for name, value in model.state.items():        # non-trivial running statistics
            value[...] = rng.uniform(0.5, 1.5, value.shape) if name.endswith("var") else (
                rng.standard_normal(value.shape))
        x = rng.standard_normal((2, 3, 32, 32))
    else:
        x = rng.integers(1, 20, (2, 5))
    to_statefulodenets(model, tmp_path / "run", dtype="float64")
    back = from_statefulodenets(tmp_path / "run")
    np.testing.assert_array_equal(back.forward(x, train=False), model.forward(x, train=False))


@pytest.mark.parametrize("model, needle", [
    (ContinuousNet(3, 10, (4, 8), n_basis=2, n_steps=2, head_activation="none",
                   padding="same"), "widths [4, 8]"),
    (ContinuousNet(3, 10, (4, 8, 16), n_basis=2, n_steps=2), "padding='symmetric'"),
    (ContinuousNet(3, 10, (4, 8, 16), n_basis=2, n_steps=2, head_activation="relu",
                   padding="same"), "head_activation='relu'"),
    (ContinuousNet(3, 10, (4, 8, 16), "legendre", 2, "heun", 2, head_activation="none",
                   padding="same"), "scheme 'heun'"),
    (ContinuousTagger(10, 3, width=4, ffn=4, n_basis=2), "ln_eps=1e-05"),
])
def test_export_refuses_what_the_original_cannot_express(model, needle, tmp_path):
    with pytest.raises(RefodeError, match="cannot be written for the original") as info:
        to_statefulodenets(model, tmp_path / "run")
    assert needle in str(info.value)
    assert not (tmp_path / "run").exists()


def test_export_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    net = ContinuousNet(3, 10, (2, 4, 8), n_basis=1, n_steps=1, head_activation="none",
                        padding="same")
    with pytest.raises(RefodeError, match="not an empty folder"):
        to_statefulodenets(net, tmp_path)
    assert os.listdir(tmp_path) == ["keep.txt"]


def _tagger_run(tmp_path, k, n, basis="piecewise_constant", scheme="euler"):
    model = ContinuousTagger(12, 4, width=4, ffn=4, basis=basis, n_basis=k, scheme=scheme,
                             n_steps=n, seed=1, ln_eps=1e-6)
    to_statefulodenets(model, tmp_path / "run")
    return tmp_path / "run"


def test_fem_linear_with_one_node_is_piecewise_constant(tmp_path):
    run = _tagger_run(tmp_path, 1, 2)
    spec = json.loads((run / "model.json").read_text())
    spec["ContinuousTransformer"]["basis"] = "fem_linear"
    (run / "model.json").write_text(json.dumps(spec))
    model = from_statefulodenets(run)
    assert (model.basis.family, model.basis.n) == ("piecewise_constant", 1)


@pytest.mark.parametrize("k, n, scheme, warns", [(7, 7, "euler", True), (8, 8, "euler", False),
                                                 (4, 49, "euler", True), (4, 4, "rk4", False)])
def test_warns_where_the_originals_float_grid_differs(k, n, scheme, warns, tmp_path):
    run = _tagger_run(tmp_path, k, n, scheme=scheme)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_statefulodenets(run)
    messages = [str(w.message) for w in caught if issubclass(w.category, RefodeWarning)]
    assert bool(messages) == warns
    if warns:
        assert "differ from the original's" in messages[0]


# ----------------------------------------------------------------- CLI
@needs_fixtures
@pytest.mark.parametrize("family", ["classifier", "tagger"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cli_convert_round_trip(family, dtype, tmp_path, capsys):
    out = tmp_path / "model.h5"
    assert cli.main(["convert", "statefulodenets", str(FIXTURES / family), str(out),
                     "--dtype", dtype]) == 0
    text = capsys.readouterr().out
    direct = from_statefulodenets(FIXTURES / family, dtype=dtype)
    for needle in (f"{direct.num_parameters():,} parameters", f"K={direct.basis.n}",
                   f"N={direct.n_steps}", "scheme: euler", "piecewise_constant",
                   type(direct).__name__, f"wrote {out}"):
        assert needle in text
    loaded = refode.load(out)
    np.testing.assert_array_equal(outputs(loaded, family), outputs(direct, family))
    want = np.load(FIXTURES / family / "outputs.npz")[dtype]
    assert relative_error(outputs(loaded, family), want) < RTOL[dtype]


@needs_fixtures
def test_cli_overwrites_only_with_force_and_never_an_input(tmp_path, capsys):
    run = copy_run("tagger", tmp_path / "run")
    out = tmp_path / "t.h5"
    out.write_bytes(b"old")
    args = ["convert", "statefulodenets", str(run), str(out)]
    assert cli.main(args) == 2 and out.read_bytes() == b"old"
    assert "--force" in capsys.readouterr().err
    assert cli.main(args + ["--force"]) == 0 and refode.load(out).n_steps == 2
    for name in ("model.json", "checkpoint_1999"):
        before = (run / name).read_bytes()
        assert cli.main(["convert", "statefulodenets", str(run), str(run / name),
                         "--force"]) == 2
        assert "is an input file" in capsys.readouterr().err
        assert (run / name).read_bytes() == before


def test_cli_prints_the_grid_warning_on_one_line(tmp_path, capsys):
    run = _tagger_run(tmp_path, 7, 7)
    assert cli.main(["convert", "statefulodenets", str(run), str(tmp_path / "t.h5")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refode convert: warning: ")
    assert "in piece 4, refode the exact position 5/7 in piece 5" in lines[0]
    assert refode.load(tmp_path / "t.h5").n_steps == 7


def test_cli_convert_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["convert", "--help"])
    assert info.value.code == 0
    assert "refode convert statefulodenets " in capsys.readouterr().out


def _edit_json(name, edit):
    def damage(run):
        data = json.loads((run / name).read_text())
        edit(data)
        (run / name).write_text(json.dumps(data))
    return damage


def _edit_tree(edit):
    def damage(run):
        ck = sorted(run.glob("checkpoint_*"))[-1]
        tree = fm.decode(ck.read_bytes(), "ck")
        edit(tree)
        ck.write_bytes(fm.encode(tree))
    return damage


def _classifier(edit):
    return _edit_json("model.json", lambda d: edit(d["ContinuousImageClassifier"]))


def _tagger_config(edit):
    return _edit_json("model.json", lambda d: edit(
        d["ContinuousTransformer"]["config"]["TransformerConfig"]))


def _target(tree):
    return tree["optimizer"]["target"]


def _truncate(run):
    ck = sorted(run.glob("checkpoint_*"))[-1]
    ck.write_bytes(ck.read_bytes()[:-100])


def _remove_checkpoints(run):
    for ck in run.glob("checkpoint_*"):
        ck.unlink()


#: (fixture, damage, words the one-line error must hold).
DAMAGES = {
    "missing model.json": ("tagger", lambda r: (r / "model.json").unlink(),
                           ["model.json", "file missing"]),
    "missing hyper-parameters": ("classifier",
                                 lambda r: (r / "optimizer_hyper_params.json").unlink(),
                                 ["optimizer_hyper_params.json", "file missing"]),
    "no checkpoint": ("tagger", _remove_checkpoints, ["holds no checkpoint_<n>"]),
    "bad JSON": ("classifier", lambda r: (r / "model.json").write_text('{"Continuous'),
                 ["model.json", "is not readable JSON"]),
    "unknown model class": ("classifier", _edit_json("model.json", lambda d: d.update(
        {"ResNet": d.pop("ContinuousImageClassifier")})), ["unknown model class 'ResNet'"]),
    "unknown attribute": ("classifier", _classifier(lambda f: f.update(depth=3)),
                          ["unknown attribute", "depth"]),
    "qkv_dim != emb_dim": ("tagger", _tagger_config(lambda c: c.update(qkv_dim=8)),
                           ["qkv_dim 8 differs from emb_dim 16"]),
    "unknown norm": ("classifier", _classifier(lambda f: f.update(norm="None")),
                     ["unsupported `norm` 'None'"]),
    "unknown scheme": ("tagger", _edit_json("model.json", lambda d: d[
        "ContinuousTransformer"].update(scheme="Heun")), ["unsupported `scheme` 'Heun'"]),
    "basis needs other K": ("classifier", _classifier(lambda f: f.update(basis="poly_linear")),
                            ["4 weight copies do not form a poly_linear basis"]),
    "n_step not an integer": ("classifier", _classifier(lambda f: f.update(n_step=0)),
                              ["`n_step` must be an integer >= 1"]),
    "epsilon not finite": ("classifier", _classifier(lambda f: f.update(epsilon=float("nan"))),
                           ["`epsilon` must be a finite number"]),
    "no refinement schedule": ("classifier", _edit_json(
        "optimizer_hyper_params.json", lambda d: d["extra"].pop("refine_epochs")),
        ["lacks `extra.refine_epochs`"]),
    "width disagrees": ("classifier", _classifier(lambda f: f.update(hidden=8)),
                        ["optimizer/target/Conv_0/kernel: shape [3, 3, 3, 4], "
                         "expected [3, 3, 3, 8]"]),
    "truncated msgpack": ("classifier", _truncate, ["checkpoint_2", "not a complete msgpack"]),
    "wrong shape": ("tagger", _edit_tree(lambda t: _target(t)["Dense_0"].update(
        kernel=np.zeros((10, 16), np.float32))),
        ["optimizer/target/Dense_0/kernel: shape [10, 16], expected [16, 10]"]),
    "missing entry": ("classifier", _edit_tree(lambda t: t["state"]["batch_stats"][
        "ResidualStitch_1"]["BatchNorm_2"].pop("var")),
        ["state/batch_stats/ResidualStitch_1/BatchNorm_2/var: entry missing"]),
    "missing node": ("classifier", _edit_tree(lambda t: _target(t)[
        "StatefulContinuousBlock_1"]["ode_params"].pop("2")), ["are not 0 .. K-1"]),
    "blocks differ in K": ("classifier", _edit_tree(lambda t: _target(t)[
        "StatefulContinuousBlock_1"]["ode_params"].pop("3")),
        ["different numbers of weight copies"]),
    "unexpected entry": ("tagger", _edit_tree(lambda t: _target(t).update(
        pos_embedding=np.zeros((1, 12, 16), np.float32))),
        ["optimizer/target/pos_embedding: unexpected entry"]),
    "non-finite value": ("tagger", _edit_tree(lambda t: _target(t)["embed"].update(
        embedding=np.full((50, 16), np.inf, np.float32))),
        ["embed/embedding: 800 non-finite value(s)"]),
    "integer array": ("tagger", _edit_tree(lambda t: _target(t)["Dense_0"].update(
        bias=np.zeros(10, np.int32))), ["Dense_0/bias: must be a float array"]),
    "no parameters": ("tagger", _edit_tree(lambda t: t.pop("optimizer")),
                      ["lacks the trees optimizer/target"]),
}


@needs_fixtures
@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    family, damage, words = DAMAGES[case]
    run = copy_run(family, tmp_path / "run")
    damage(run)
    out = tmp_path / "out" / "model.h5"
    (tmp_path / "out").mkdir()
    assert cli.main(["convert", "statefulodenets", str(run), str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refode convert: error: "), captured.err
    for word in words:
        assert word in lines[0], lines[0]
    assert os.listdir(tmp_path / "out") == []
    with pytest.raises(FormatError):
        from_statefulodenets(run)
