"""Golden vectors: contents, `refode check` pass/fail, the input gradient."""
import os

import h5py
import numpy as np
import pytest

import refode
from refode import cli
from refode.errors import FormatError
from refode.io import golden, reference

from .conftest import small_net, small_tagger

#: relative size of the perturbation that `refode check` must detect.
PERTURBATION = 1e-6
#: perturbed elements are at least this fraction of their array's largest magnitude.
MIN_SCALE = 1e-3
#: arrays whose largest magnitude is below this are round-off zeros (a relative
#: perturbation of them is below any absolute tolerance): not perturbed.
ROUND_OFF = 1e-12


@pytest.fixture(scope="module")
def golden_net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden")
    model = small_net()
    refode.save(model, folder / "net.h5")
    assert cli.main(["golden", str(folder / "net.h5"), "-o", str(folder / "g.h5"),
                     "--seed", "1", "--batch", "3"]) == 0
    return folder / "g.h5"


def test_golden_file_holds_everything(golden_net):
    model = small_net()
    with h5py.File(golden_net, "r") as f:
        text = {k: f.attrs[k].decode() for k in ("format", "dtype", "scheme", "mode",
                                                   "refode_version")}
        assert text["format"] == "refode-golden" and text["dtype"] == "float64"
        assert text["scheme"] == "euler" and f.attrs["n_steps"] == 2
        assert text["mode"] == "train" and f.attrs["rtol"] > 0
        assert text["refode_version"] == refode.__version__
        x, y = f["inputs/x"][()], f["inputs/y"][()]
        assert x.shape == (3, 1, 8, 8) and y.shape == (3,)
        assert sorted(f["gradients/params"]) == sorted(model.params)
        assert f["gradients/inputs/x"].shape == x.shape
        assert f["outputs/loss"].shape == ()
        loss, grads = model.loss_and_gradients(x, y, update_state=False)
        assert f["outputs/loss"][()] == loss
        for name, g in grads.items():
            assert np.array_equal(f[f"gradients/params/{name}"][()], g), name
        assert np.array_equal(refode.load(golden_net).params["dense.weight"],
                              model.params["dense.weight"])


def test_input_gradient_matches_finite_differences():
    model = small_net()
    x, y = reference.seeded_inputs(model, 0, 2)
    dx = reference.compute(model, x, y)["gradients/inputs/x"]
    eps, idx = 1e-6, (1, 0, 3, 4)
    xp, xm = x.copy(), x.copy()
    xp[idx] += eps
    xm[idx] -= eps
    fd = (model.loss(xp, y) - model.loss(xm, y)) / (2 * eps)
    assert fd == pytest.approx(dx[idx], rel=1e-6, abs=1e-10)


def test_check_passes_against_itself(golden_net, capsys):
    assert cli.main(["check", str(golden_net), str(golden_net)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "/gradients/inputs/x" in out


def _perturbed_copy(src, dst, name, rng):
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for group in ("outputs", "gradients"):
            f.copy(group, g)
        arr = g[name][()]
        flat = arr.reshape(-1)
        big = np.flatnonzero(np.abs(flat) >= MIN_SCALE * np.abs(flat).max())
        i = rng.choice(big)
        flat[i] *= 1 + PERTURBATION
        g[name][...] = arr
        del g[name].attrs["sha256"]   # as an editor would (other writers need not add it)


def test_check_fails_on_one_perturbed_gradient_element(golden_net, tmp_path, capsys):
    rng = np.random.default_rng(0)
    with h5py.File(golden_net, "r") as f:
        names = ["gradients/inputs/x"] + [f"gradients/params/{n}" for n in f["gradients/params"]]
        names = [n for n in names if np.abs(f[n][()]).max() > ROUND_OFF]
    assert len(names) >= 30
    for name in names:
        cand = tmp_path / "cand.h5"
        _perturbed_copy(golden_net, cand, name, rng)
        assert cli.main(["check", str(golden_net), str(cand)]) == 1, name
        out = capsys.readouterr().out
        failed = [line for line in out.splitlines() if "FAIL" in line]
        assert len(failed) == 1 and failed[0].startswith("/" + name), out


def test_check_reports_missing_arrays_and_bad_files(golden_net, tmp_path, capsys):
    cand = tmp_path / "cand.h5"
    with h5py.File(golden_net, "r") as f, h5py.File(cand, "w") as g:
        f.copy("outputs", g)
    assert cli.main(["check", str(golden_net), str(cand)]) == 1
    assert "FAIL missing" in capsys.readouterr().out
    (tmp_path / "junk.h5").write_bytes(b"junk")
    assert cli.main(["check", str(golden_net), str(tmp_path / "junk.h5")]) == 2
    assert cli.main(["check", str(cand), str(golden_net)]) == 2  # not a golden file
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("refode check: error: /") for line in err)


def test_tagger_golden_round_trip(tmp_path):
    model = small_tagger()
    x, y = reference.seeded_inputs(model, 0, 2)
    arrays = golden.write(tmp_path / "t.h5", model, x, y)
    assert arrays["gradients/inputs/embedded"].shape == (2, 6, 8)
    rows, _, _ = golden.compare(tmp_path / "t.h5", tmp_path / "t.h5")
    assert rows and all(r["passed"] for r in rows)


def test_leading_axis_message_names_path_and_fix(tmp_path, saved):
    path = tmp_path / "k.h5"
    refode.save(small_net(), path)
    with h5py.File(path, "r+") as f:
        del f["params/block1.conv1.weight"]
        f["params/block1.conv1.weight"] = np.zeros((3, 4, 4, 3, 3))
    with pytest.raises(FormatError, match=r"^/params/block1\.conv1\.weight: shape "
                                          r"\(3, 4, 4, 3, 3\) but n_basis = 2 needs leading "
                                          r"axis 2; write \(2, \.\.\.\)"):
        refode.load(path)


@pytest.mark.parametrize("edit, where", [
    (lambda f: f.__delitem__("gradients/params/dense.bias"), "/gradients/params/dense.bias"),
    (lambda f: f.__delitem__("outputs/loss"), "/outputs/loss"),
    (lambda f: f.create_dataset("gradients/params/extra", data=[1.0]),
     "/gradients/params/extra"),
    (lambda f: (f.__delitem__("gradients/params/dense.weight"),
                f.create_dataset("gradients/params/dense.weight", data=np.zeros((2, 2)))),
     "/gradients/params/dense.weight"),
    (lambda f: f["outputs/logits"].__setitem__((0, 0), np.nan), "/outputs/logits"),
    (lambda f: f.attrs.__setitem__("rtol", -1.0), "/@rtol"),
    (lambda f: f.attrs.__setitem__("mode", "test"), "/@mode"),
    (lambda f: f["outputs/logits"].__setitem__((0, 0), 1.5), "/outputs/logits"),  # sha256
    (lambda f: f.__delitem__("model/params/dense.bias"), "/model/params/dense.bias"),
    (lambda f: f["model"].attrs.__setitem__("format_version", 9), "/model@format_version"),
    (lambda f: f.__delitem__("model"), "/model"),
])
def test_malformed_golden_file_exits_2_naming_the_path(golden_net, tmp_path, capsys, edit,
                                                       where):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(golden_net.read_bytes())
    with h5py.File(bad, "r+") as f:
        edit(f)
    assert cli.main(["check", str(bad), str(golden_net)]) == 2
    assert cli.main(["info", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(where in line for line in lines), lines
    assert os.listdir(tmp_path) == ["bad.h5"]


def test_train_golden_stores_the_running_statistics_after_the_step(golden_net, tmp_path):
    model = small_net()
    with h5py.File(golden_net, "r") as f:
        x, y = f["inputs/x"][()], f["inputs/y"][()]
        stored = {n: f[f"outputs/state/{n}"][()] for n in f["outputs/state"]}
    before = {k: v.copy() for k, v in model.state.items()}
    model.loss_and_gradients(x, y, update_state=True)
    assert sorted(stored) == sorted(model.state) and len(stored) == 22
    for name, value in model.state.items():
        assert np.array_equal(stored[name], value), name
    assert any(not np.array_equal(before[k], v) for k, v in model.state.items())
    arrays = golden.write(tmp_path / "e.h5", small_net(), x, y, mode="eval")
    assert not any(name.startswith("outputs/state") for name in arrays)


def test_check_fails_when_running_statistics_differ_by_1e_6(golden_net, tmp_path, capsys):
    rng = np.random.default_rng(1)
    names = ["outputs/state/block1.bn1.var", "outputs/state/block2.bn2.mean",
             "outputs/state/stem_bn.var"]
    for name in names:
        cand = tmp_path / "cand.h5"
        _perturbed_copy(golden_net, cand, name, rng)
        assert cli.main(["check", str(golden_net), str(cand)]) == 1, name
        failed = [line for line in capsys.readouterr().out.splitlines() if "FAIL" in line]
        assert len(failed) == 1 and failed[0].startswith("/" + name), failed
    with h5py.File(golden_net, "r") as f, h5py.File(cand, "w") as g:
        f.copy("gradients", g)
        g.create_group("outputs")
        for name in ("logits", "loss"):
            f.copy(f"outputs/{name}", g["outputs"])
    assert cli.main(["check", str(golden_net), str(cand)]) == 1   # statistics not given
    assert "/outputs/state/block1.bn1.var" in capsys.readouterr().out


def test_running_statistics_are_all_or_none_and_train_mode_only(golden_net, tmp_path, capsys):
    part = tmp_path / "part.h5"
    part.write_bytes(golden_net.read_bytes())
    with h5py.File(part, "r+") as f:
        del f["outputs/state/block1.bn1.var"]
    assert cli.main(["check", str(part), str(golden_net)]) == 2
    assert "/outputs/state/block1.bn1.var: dataset missing" in capsys.readouterr().err
    with h5py.File(part, "r+") as f:
        del f["outputs/state"]               # a file written before the statistics were
    assert cli.main(["check", str(part), str(golden_net)]) == 0   # stored still checks
    capsys.readouterr()
    with h5py.File(part, "r+") as f:
        f.attrs["mode"] = np.bytes_(b"eval")
        f["outputs/state/x"] = np.zeros(2)
    assert cli.main(["check", str(part), str(golden_net)]) == 2
    assert "running statistics in a golden file of mode 'eval'" in capsys.readouterr().err
