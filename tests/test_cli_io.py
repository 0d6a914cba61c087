"""The file commands of ``refode``: compress, eval, convergence, info, help, errors."""
import gzip
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import refode
from refode import cli
from refode.io.summary import counts

from tests.io.conftest import small_net, small_tagger

COMMANDS = ("info", "compress", "golden", "check", "eval", "convergence", "convert")


@pytest.fixture(scope="module")
def net16(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "net16.h5"
    refode.save(small_net(n_basis=16, n_steps=16), path)
    return path


def test_compress_16_to_8_halves_depth_dependent_parameters(net16, tmp_path, capsys):
    out = tmp_path / "net8.h5"
    assert cli.main(["compress", str(net16), str(out), "--basis", "piecewise_constant",
                     "--n-basis", "8"]) == 0
    text = capsys.readouterr().out
    before, after = refode.load(net16), refode.load(out)
    assert counts(after)[1] * 2 == counts(before)[1]
    assert f"depth-dependent parameters: {counts(before)[1]:,} -> {counts(after)[1]:,}" in text
    assert "block1: relative L2 error" in text and "block2: relative L2 error" in text
    assert after.basis.n == 8 and after.n_steps == 16
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    assert np.isfinite(after.forward(x)).all()
    assert sorted(os.listdir(tmp_path)) == ["net8.h5"]


def test_compress_error_is_zero_for_an_exact_refinement(tmp_path, capsys):
    src = tmp_path / "k2.h5"
    refode.save(small_net(), src)
    assert cli.main(["compress", str(src), str(tmp_path / "k4.h5"), "--basis",
                     "piecewise_constant", "--n-basis", "4", "--n-steps", "4"]) == 0
    errors = [float(line.split()[-1]) for line in capsys.readouterr().out.splitlines()
              if "relative L2 error" in line]
    assert len(errors) == 2 and max(errors) < 1e-7


def test_eval_npz_and_idx(net16, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 6, 6), dtype=np.uint8)
    labels = rng.integers(0, 3, 5).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=images[:, None] / 255.0, y=labels.astype(np.int64))
    with gzip.open(tmp_path / "img.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (5, 6, 6))
                 + images.tobytes())
    (tmp_path / "lab").write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big")
                                   + labels.tobytes())
    assert cli.main(["eval", str(net16), "--data", str(tmp_path / "d.npz")]) == 0
    first = capsys.readouterr().out
    assert cli.main(["eval", str(net16), "--data", str(tmp_path / "img.gz"),
                     str(tmp_path / "lab")]) == 0
    second = capsys.readouterr().out
    assert "samples 5" in first and first == second   # same pixels, same result
    assert cli.main(["eval", str(net16), "--data", str(tmp_path / "d.npz"), "--scheme",
                     "midpoint", "--n-steps", "4"]) == 0
    assert "scheme midpoint  N 4" in capsys.readouterr().out
    assert cli.main(["eval", str(net16), "--data", str(tmp_path / "lab"),
                     str(tmp_path / "img.gz")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_eval_tagger_npz(tmp_path, capsys):
    path = tmp_path / "t.h5"
    refode.save(small_tagger(), path)
    x = np.array([[1, 2, 3, 0], [4, 5, 6, 7]])
    y = np.array([[0, 1, 2, -100], [3, 4, 0, 1]])
    np.savez(tmp_path / "t.npz", x=x, y=y)
    assert cli.main(["eval", str(path), "--data", str(tmp_path / "t.npz")]) == 0
    assert "samples 7" in capsys.readouterr().out


def test_convergence_table_shows_the_order(tmp_path, capsys):
    path = tmp_path / "net.h5"
    refode.save(small_net(n_basis=1, n_steps=1), path)
    assert cli.main(["convergence", str(path), "--schemes", "euler", "rk4",
                     "--n-steps", "1", "2", "4", "8", "64"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    orders = {s: [float(r[3]) for r in rows if r[0] == s and len(r) == 4] for s in
              ("euler", "rk4")}
    assert len(rows) == 10 and max(orders["rk4"]) > max(orders["euler"]) > 0.5


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def _exit_code(args):
    """Exit code of ``refode ARGS`` in-process (usage errors raise SystemExit)."""
    try:
        return cli.main(args)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("args", [
    ["info"], ["info", "missing.h5"], ["compress", "a.h5", "b.h5", "--n-basis", "4"],
    ["compress", "a.h5", "b.h5", "--basis", "x", "--n-basis", "0"],
    ["check", "a.h5"], ["check", "a.h5", "b.h5", "--rtol", "-1"],
    ["golden", "a.h5"], ["eval", "a.h5"], ["convergence", "a.h5", "--n-steps", "x"]])
def test_bad_input_is_one_line_and_exit_2(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _exit_code(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_compress_error_as_a_subprocess(net16, tmp_path):
    res = subprocess.run([sys.executable, "-m", "refode", "compress", str(net16),
                          str(tmp_path / "o.h5"), "--basis", "fourier", "--n-basis", "4"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "fourier" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and os.listdir(tmp_path) == []


def test_golden_from_an_inputs_file_equals_the_seeded_one(tmp_path, capsys):
    from refode.io.reference import seeded_inputs

    model = small_net()
    refode.save(model, tmp_path / "m.h5")
    x, y = seeded_inputs(model, 5, 2)
    np.savez(tmp_path / "in.npz", x=x, y=y)
    assert cli.main(["golden", str(tmp_path / "m.h5"), "-o", str(tmp_path / "a.h5"),
                     "--inputs", str(tmp_path / "in.npz")]) == 0
    assert cli.main(["golden", str(tmp_path / "m.h5"), "-o", str(tmp_path / "b.h5"),
                     "--seed", "5", "--batch", "2"]) == 0
    assert cli.main(["check", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"),
                     "--rtol", "0", "--atol", "0"]) == 0
    assert cli.main(["golden", str(tmp_path / "m.h5"), "-o", str(tmp_path / "c.h5"),
                     "--inputs", str(tmp_path / "in.npz"), "--seed", "1"]) == 2
    assert "either --inputs or --seed" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["a.h5", "b.h5", "in.npz", "m.h5"]


@pytest.fixture(scope="module")
def decaying(tmp_path_factory):
    """An rk4 N = 1 net (pc K = 4) whose block2 bn1 variance falls 1 -> 0.01 over depth,
    and an .npz of images: projected onto a line, that variance is negative at t = 1."""
    folder = tmp_path_factory.mktemp("stats")
    model = small_net(n_basis=4, n_steps=1).rediscretize(scheme="rk4")
    model.network.layers["block2"].state["bn1.var"][:] = np.array([1.0, 0.4, 0.05, 0.01])[:, None]
    refode.save(model, folder / "decaying.h5")
    rng = np.random.default_rng(3)
    np.savez(folder / "x.npz", x=rng.random((6, 1, 6, 6)), y=rng.integers(0, 3, 6))
    return folder


def test_compress_refuses_nonpositive_statistics_naming_block_and_stage(decaying, capsys):
    src, out = decaying / "decaying.h5", decaying / "line.h5"
    args = ["compress", str(src), str(out), "--basis", "legendre", "--n-basis", "2"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("refode compress: error: running variance block2.bn1.var + eps <= 0 "
                          "at the stage t = 1 ") and "--allow-nonpositive-stats" in err
    assert not out.exists()
    assert cli.main(args + ["--allow-nonpositive-stats"]) == 0
    assert "warning: running variance block2.bn1.var" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", refode.errors.RefodeWarning)  # load may warn too
        assert refode.load(out).network.layers["block2"].nonpositive_variances()


@pytest.mark.parametrize("policy", ["positive", "recalibrate"])
def test_compress_statistics_policies_write_positive_variances(decaying, tmp_path, policy,
                                                               capsys):
    out = tmp_path / "line.h5"
    extra = ["--data", str(decaying / "x.npz"), "--calibration-samples", "4"] \
        if policy == "recalibrate" else []
    assert cli.main(["compress", str(decaying / "decaying.h5"), str(out), "--basis",
                     "legendre", "--n-basis", "2", "--stats", policy, *extra]) == 0
    model = refode.load(out)
    assert all(b.nonpositive_variances() == [] for b in model.blocks())
    assert np.isfinite(model.forward(np.load(decaying / "x.npz")["x"])).all()
    capsys.readouterr()
    assert cli.main(["eval", str(out), "--data", str(decaying / "x.npz")]) == 0
    assert capsys.readouterr().out.rstrip().endswith("non-finite 0")


def test_compress_recalibrate_needs_data_and_data_needs_recalibrate(decaying, tmp_path, capsys):
    base = ["compress", str(decaying / "decaying.h5"), str(tmp_path / "o.h5"), "--basis",
            "legendre", "--n-basis", "2"]
    assert cli.main(base + ["--stats", "recalibrate"]) == 2
    assert cli.main(base + ["--data", str(decaying / "x.npz")]) == 2
    assert capsys.readouterr().err.count("--stats recalibrate needs --data") == 2
