"""Files record the model's backend (root attribute ``backend``) and load restores it.

The attribute is optional (no format version changes with it): files without it, such
as every file written before it existed, load on ``"cpu"``; ``refode.load(path,
backend=...)`` builds the model on another backend.
"""
import pathlib

import h5py
import numpy as np
import pytest

import refode
from refode import backend as backends
from refode.cli import main
from refode.errors import FormatError, RefodeError
from refode.models import ContinuousNet, ContinuousTagger

from .conftest import MAKERS

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def _arrays(model):
    return {**model.params, **model.state}


def _same_arrays(a, b):
    assert a.keys() == b.keys()
    for name, value in a.items():
        assert value.dtype == b[name].dtype and value.tobytes() == b[name].tobytes(), name


@pytest.mark.parametrize("family", sorted(MAKERS))
@pytest.mark.parametrize("name", ["reference", "cpu"])
def test_the_backend_round_trips_through_a_file(tmp_path, family, name):
    model = MAKERS[family]()
    model = type(model).from_config(model.config, dtype=model.dtype, backend=name)
    refode.save(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as fh:
        assert fh.attrs["backend"].decode() == name
        assert fh.attrs["format_version"] == 2
    again = refode.load(tmp_path / "m.h5")
    assert isinstance(again.backend, backends.Backend) and again.backend.name == name
    _same_arrays(_arrays(model), _arrays(again))
    assert type(model).from_file(tmp_path / "m.h5").backend.name == name


@pytest.mark.parametrize("family", sorted(MAKERS))
def test_load_overrides_the_files_backend(tmp_path, family):
    model = MAKERS[family]()
    refode.save(model, tmp_path / "m.h5")
    ref = refode.load(tmp_path / "m.h5", backend="reference")
    assert ref.backend.name == "reference"
    assert all(layer.backend.name == "reference" for layer in ref.network.layers.values()
               if hasattr(layer, "backend"))
    _same_arrays(_arrays(model), _arrays(ref))
    assert type(model).from_file(tmp_path / "m.h5", backend=backends.get("reference")
                                 ).backend.name == "reference"
    with pytest.raises(RefodeError, match="^unknown backend 'gpu'; choose one of"):
        refode.load(tmp_path / "m.h5", backend="gpu")


def test_a_file_without_the_attribute_loads_on_cpu(tmp_path):
    refode.save(MAKERS["net"](), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as fh:
        del fh.attrs["backend"]
    assert refode.load(tmp_path / "m.h5").backend.name == "cpu"
    for name in ("v1_continuousnet.h5", "v1_tagger.h5", "v1_golden_net.h5"):
        with h5py.File(DATA / name, "r") as fh:
            assert "backend" not in fh.attrs and "backend" not in fh.get("model", fh).attrs
        assert refode.load(DATA / name).backend.name == "cpu"


@pytest.mark.parametrize("value", ["gpu", ""])
def test_an_unknown_backend_in_a_file_is_a_format_error(tmp_path, value):
    refode.save(MAKERS["tagger"](), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as fh:
        fh.attrs["backend"] = value
    with pytest.raises(FormatError, match=r"^/@backend: unknown backend .*; use one of "
                                          "reference, cpu, cuda"):
        refode.load(tmp_path / "m.h5")
    assert refode.load(tmp_path / "m.h5", backend="cpu").backend.name == "cpu"


def test_a_file_whose_backend_cannot_run_here_says_what_to_pass(tmp_path, monkeypatch):
    refode.save(MAKERS["net"](), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as fh:
        fh.attrs["backend"] = np.array(b"cuda", dtype=h5py.string_dtype("utf-8", 4))
    monkeypatch.setattr(backends, "_cuda_problem", lambda: "no CUDA GPU is available")
    with pytest.raises(FormatError) as info:
        refode.load(tmp_path / "m.h5")
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        "/@backend: the file's backend 'cuda' cannot run here (no CUDA GPU is available); ")
    assert message.endswith("refode.load(path, backend='cpu')")
    assert refode.load(tmp_path / "m.h5", backend="cpu").backend.name == "cpu"


def test_golden_files_record_the_backend_of_their_model(tmp_path):
    model = ContinuousTagger(vocab_size=5, n_tags=2, width=2, ffn=2, n_basis=1,
                             backend="reference")
    refode.save(model, tmp_path / "m.h5")
    assert main(["golden", str(tmp_path / "m.h5"), "-o", str(tmp_path / "g.h5")]) == 0
    with h5py.File(tmp_path / "g.h5", "r") as fh:
        assert "backend" not in fh.attrs
        assert fh["model"].attrs["backend"].decode() == "reference"
    assert refode.load(tmp_path / "g.h5").backend.name == "reference"


def test_saving_keeps_the_numbers_of_every_backend(tmp_path):
    kw = dict(in_channels=1, n_classes=2, widths=(2,), n_basis=1, n_steps=1)
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    cpu = ContinuousNet(**kw)
    refode.save(ContinuousNet(**kw, backend="reference"), tmp_path / "r.h5")
    loaded = refode.load(tmp_path / "r.h5", backend="cpu")
    assert loaded.forward(x).tobytes() == cpu.forward(x).tobytes()
