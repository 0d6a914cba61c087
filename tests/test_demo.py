"""The main job runs end to end and writes its report (a short, seeded run)."""
import json

import pytest

pytest.importorskip("sklearn")

from refode import demo  # noqa: E402


def test_demo_writes_report_and_learns(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "EPOCHS_PER_LEVEL", (1, 1, 1, 2))
    rows = demo.run_demo(out=tmp_path, seed=0, quiet=True)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == json.loads(json.dumps(rows))
    keys = {"basis", "n_basis", "method", "scheme", "n_steps", "accuracy", "n_parameters", "seconds"}
    assert all(set(r) == keys for r in saved)
    trained = [r for r in saved if r["method"] == "trained"]
    assert trained and min(r["accuracy"] for r in trained) > 0.8  # chance is 0.1
    # projection to fewer pieces shrinks the parameter count
    counts = {r["n_basis"]: r["n_parameters"] for r in saved if r["basis"] == "piecewise_constant"}
    assert counts[1] < counts[2] < counts[4] < counts[8]
    assert len({(r["basis"], r["n_basis"], r["method"], r["scheme"], r["n_steps"]) for r in saved}) == len(saved)
