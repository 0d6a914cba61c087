"""The main job runs end to end and writes its files (a short, seeded run).

The epoch schedule and the evaluation grid are shortened (monkeypatched); the full
demo's targets are checked by running ``refode demo`` (see the README).
"""
import json

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import refode  # noqa: E402
from refode import demo  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_writes_report_model_golden_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "WIDTHS", (8, 16))
    monkeypatch.setattr(demo, "EPOCHS_PER_LEVEL", (1, 1, 1, 1))
    monkeypatch.setattr(demo, "STEP_SWEEP", (1, 2))
    monkeypatch.setattr(demo, "COMPRESSIONS", [
        ("piecewise_constant", 4, "projection"), ("piecewise_constant", 1, "projection"),
        ("piecewise_constant", 1, "interpolation"), ("fem_linear", 3, "projection"),
        ("legendre", 2, "projection")])
    monkeypatch.setattr(demo, "COMPRESSED_RUNS", (("rk4", 2),))
    monkeypatch.setattr(demo, "POLICY_COMPRESSIONS", [("legendre", 2, "projection",
                                                       "recalibrate")])
    monkeypatch.setattr(demo, "SWEEP_WORKERS", 0)  # in-process (tests/sweep: processes)
    rows = demo.run_demo(out=tmp_path, seed=0, quiet=True)

    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == json.loads(json.dumps(rows))
    assert all(set(r) == set(demo.REPORT_KEYS) for r in saved)
    keys = [(r["basis"], r["n_basis"], r["method"], r["stats"], r["scheme"], r["n_steps"])
            for r in saved]
    assert len(set(keys)) == len(keys) == 3 * 2 + 5 * 2 + 2  # + the recalibrated legendre
    assert {k[3] for k in keys} == {"project", "recalibrate"}
    assert all(r["nonfinite"] == 0 for r in saved if r["stats"] == "recalibrate")
    trained = [r for r in saved if r["method"] == "trained"]
    assert {(r["scheme"], r["n_steps"]) for r in trained} == {
        (s, n) for s in demo.SCHEMES for n in (1, 2)}
    assert all(r["n_basis"] == 8 for r in trained)
    assert max(r["accuracy"] for r in trained) > 0.5  # chance is 0.1
    counts = {r["n_basis"]: r["n_parameters"] for r in saved if r["basis"] == "piecewise_constant"}
    assert counts[1] < counts[4] < counts[8]
    assert all(r["seconds"] > 0 for r in saved)

    model = refode.load(tmp_path / "model.h5")
    assert (model.basis.n, model.n_steps) == (8, 8)
    assert (tmp_path / "golden.h5").stat().st_size > 0 and (tmp_path / "checkpoint.h5").exists()
    for name in ("accuracy_vs_parameters.png", "accuracy_vs_steps.png",
                 "sweep/pareto_parameters.png", "sweep/pareto_time.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    assert len(list((tmp_path / "sweep" / "cells").iterdir())) == len(saved)
    assert len((tmp_path / "sweep" / "results.csv").read_text().splitlines()) == len(saved) + 1
    out = capsys.readouterr()
    assert out.out.startswith("basis") and out.err == ""  # quiet: the table only


def test_split_is_seeded_and_disjoint():
    a = demo.load_digits_split(3)
    b = demo.load_digits_split(3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    x_train, y_train, x_test, y_test = a
    assert x_train.shape == (1397, 1, 8, 8) and x_test.shape == (demo.N_TEST, 1, 8, 8)
    assert len(y_train) + len(y_test) == 1797
