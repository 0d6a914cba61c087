"""The sweep configuration: grid products, defaults, ids, validation naming the key."""
import json

import pytest

from refode.errors import RefodeError
from refode.models import ContinuousNet
from refode.sweep import cell_id, load_config, parse_config
from refode.sweep.config import resolve_cell


def test_grids_are_products_in_key_order_without_duplicates(tmp_path):
    cfg = parse_config({"model": "m.h5", "grid": [
        {"basis": ["legendre"], "n_basis": [2, 3], "stats": ["project", "positive"]},
        {"basis": ["legendre"], "n_basis": [2]}]}, str(tmp_path))
    assert cfg["model"] == str(tmp_path / "m.h5")
    assert [(c["n_basis"], c["stats"]) for c in cfg["cells"]] == [
        (2, "project"), (2, "positive"), (3, "project"), (3, "positive")]
    assert cfg["calibration"] is None and cfg["samples"] == 512 and cfg["limit"] is None


def test_cells_resolve_against_the_model_and_n_steps_k():
    model = ContinuousNet(in_channels=1, n_classes=2, widths=(2,), n_basis=4, n_steps=8)
    cfg = parse_config({"model": "m.h5", "grid": {"n_basis": [2], "n_steps": ["K", None]}})
    cells = [resolve_cell(c, model) for c in cfg["cells"]]
    assert [cell_id(c) for c in cells] == [
        "piecewise_constant-K2-projection-project-euler-N2",
        "piecewise_constant-K2-projection-project-euler-N8"]


@pytest.mark.parametrize("raw, match", [
    ([], "JSON object"),
    ({"grid": {}}, "`model`"),
    ({"model": "m.h5", "grid": {"basis": ["bessel"]}}, r"grid\.basis: unknown basis"),
    ({"model": "m.h5", "grid": {"stats": ["clip"]}}, "unknown stats"),
    ({"model": "m.h5", "grid": {"n_basis": [0]}}, "positive integer"),
    ({"model": "m.h5", "grid": {"n_steps": "K"}}, "non-empty list"),
    ({"model": "m.h5", "grid": {"K": [2]}}, "unknown key"),
    ({"model": "m.h5", "grid": {}, "seed": 1}, "unknown key"),
    ({"model": "m.h5", "grid": {}, "calibration": {"data": 3}}, "calibration.data"),
    ({"model": "m.h5", "grid": {}, "batch_size": True}, "batch_size"),
])
def test_bad_configurations_name_the_problem(raw, match):
    with pytest.raises(RefodeError, match=match):
        parse_config(raw)


def test_load_config_resolves_paths_from_its_folder(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(
        {"model": "m.h5", "grid": {}, "calibration": {"data": ["a.npz"], "samples": 3}}))
    cfg = load_config(tmp_path / "c.json")
    assert cfg["calibration"] == [str(tmp_path / "a.npz")] and cfg["samples"] == 3
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RefodeError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")
