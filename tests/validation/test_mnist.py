"""Smoke test of validation/mnist.py on a tiny synthetic IDX data set."""
import gzip
import importlib.util
import json
import os

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "validation", "mnist.py")


@pytest.fixture(scope="module")
def mnist():
    spec = importlib.util.spec_from_file_location("validation_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, mnist):
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 40)
    images = rng.integers(0, 256, (40, 28, 28))
    _write_idx(folder / (mnist.IMAGES + ".gz"), images)
    _write_idx(folder / (mnist.LABELS + ".gz"), labels)
    return folder


ARGS = ["--n-train", "24", "--n-test", "16", "--widths", "2,3", "--epochs-per-level", "1,1",
        "--compress-to", "2", "--step-counts", "1,3", "--quiet", "--workers", "0"]


def test_split_is_by_position_and_pooled(mnist, data_dir):
    x, y, xt, yt, sums = mnist.load_split(str(data_dir), 24, 16, 2)
    assert x.shape == (24, 1, 14, 14) and xt.shape == (16, 1, 14, 14)
    with gzip.open(data_dir / (mnist.IMAGES + ".gz")) as fh:
        raw = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(40, 28, 28)
    np.testing.assert_allclose(x[0, 0, 0, 0], raw[0, :2, :2].mean() / 255.0, rtol=1e-15)
    np.testing.assert_allclose(xt[-1, 0, -1, -1], raw[-1, -2:, -2:].mean() / 255.0, rtol=1e-15)
    assert set(sums) == {mnist.IMAGES + ".gz", mnist.LABELS + ".gz"}


def test_run_writes_report_and_is_reproducible(mnist, data_dir, tmp_path):
    first = mnist.main(["--data", str(data_dir), "--out", str(tmp_path / "a")] + ARGS)
    second = mnist.main(["--data", str(data_dir), "--out", str(tmp_path / "b")] + ARGS)
    for name in ("model.h5", "checkpoint.h5", "report.json", "tables.md"):
        assert (tmp_path / "a" / name).exists()
    on_disk = json.loads((tmp_path / "a" / "report.json").read_text())
    assert on_disk["n_train"] == 24 and on_disk["n_test"] == 16
    rows = first["rows"]
    # compression: trained + 3 families x 1 size x 2 methods (the piecewise-constant
    # projection onto K = 2 is the trained model) + 3 families x 2 statistics policies;
    # discretization: 3 x 2
    assert sum(r["table"] == "compression" for r in rows) == 6 + 6
    assert {r["stats"] for r in rows} == {"project", "recalibrate", "positive"}
    assert all(r["nonfinite"] == 0 for r in rows if r["stats"] != "project")
    assert (tmp_path / "a" / "sweep" / "pareto_parameters.png").exists()
    assert sum(r["table"] == "discretization" for r in rows) == 6
    assert rows[0]["method"] == "trained" and rows[0]["n_basis"] == 2
    assert all(r["nonpositive_variance_stages"] >= 0 for r in rows)
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in second["rows"]]
    assert [h["loss"] for h in first["history"]] == [h["loss"] for h in second["history"]]
    assert "| euler |" in (tmp_path / "a" / "tables.md").read_text()


def test_missing_data_is_one_line(mnist, tmp_path):
    with pytest.raises(SystemExit, match="no t10k-images-idx3-ubyte"):
        mnist.main(["--data", str(tmp_path), "--out", str(tmp_path / "o")] + ARGS)


class _SweepCalled(Exception):
    """Raised by the stand-in of run_sweep, carrying its keyword arguments."""


def _stop_at_sweep(**kwargs):
    raise _SweepCalled(kwargs)


@pytest.mark.parametrize("extra,wanted", [([], False), (["--retry-failed"], True)])
def test_retry_failed_reaches_the_sweep(mnist, monkeypatch, tmp_path, extra, wanted):
    monkeypatch.setattr(mnist, "sweep_config", lambda args, model: {})
    monkeypatch.setattr(mnist, "write_inputs", lambda *a: ("sweep.json", "test.npz"))
    monkeypatch.setattr(mnist, "run_sweep", lambda *a, **kw: _stop_at_sweep(**kw))
    args = mnist.parse_args(["--data", str(tmp_path), "--out", str(tmp_path)] + extra)
    with pytest.raises(_SweepCalled) as called:
        mnist.evaluate_tables(args, None, None, None, None, None)
    assert called.value.args[0]["retry_failed"] is wanted
