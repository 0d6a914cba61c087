"""``refode sweep``: help with an example, one-line errors, a run through the CLI."""
import json

import pytest

from refode import cli


def test_sweep_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and "refode sweep sweep.json --data test.npz --out" in text
    assert "--scheduler" in text and '"grid"' in text


def test_sweep_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"model": "none.h5", "grid": {}}))
    (tmp_path / "d.npz").write_bytes(b"")
    assert cli.main(["sweep", str(tmp_path / "c.json"), "--data", str(tmp_path / "d.npz"),
                     "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refode sweep: error: ") and "none.h5: no such file" in err
    assert err.count("\n") == 1


def test_sweep_command_reuses_finished_cells(tmp_path, capsys):
    import numpy as np

    import refode
    from refode.models import ContinuousNet

    model = ContinuousNet(in_channels=1, n_classes=2, widths=(2,), n_basis=2, n_steps=2)
    refode.save(model, tmp_path / "m.h5")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((4, 1, 4, 4)), y=rng.integers(0, 2, 4))
    (tmp_path / "c.json").write_text(json.dumps({"model": "m.h5", "grid": {}}))
    args = ["sweep", str(tmp_path / "c.json"), "--data", str(tmp_path / "d.npz"), "--out",
            str(tmp_path / "o"), "--quiet"]
    (tmp_path / "o" / "cells").mkdir(parents=True)
    record = {"id": "piecewise_constant-K2-projection-project-euler-N2", "status": "ok",
              "basis": "piecewise_constant", "n_basis": 2, "method": "projection",
              "stats": "project", "scheme": "euler", "n_steps": 2, "accuracy": 0.5,
              "n_parameters": 1, "l2_error": 0.0, "seconds": 1e-3}
    (tmp_path / "o" / "cells" / f"{record['id']}.json").write_text(json.dumps(record))
    assert cli.main(args) == 0  # the one cell is written: no cluster is started
    out = capsys.readouterr().out
    assert "1 cells (0 computed, 1 reused, 0 failed)" in out and "50.00%" in out
    assert (tmp_path / "o" / "pareto_parameters.png").exists()
