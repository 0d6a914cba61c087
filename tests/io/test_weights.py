"""Weight files: bitwise round trips, the documented layout, atomic writes."""
import hashlib
import json
import os

import h5py
import numpy as np
import pytest

import refode
from refode.errors import RefodeError
from refode.io import weights

from .conftest import MAKERS


def _dump(path):
    """Every attribute and array of an HDF5 file, by path."""
    out = {}

    def visit(name, obj):
        out[name + "@"] = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            out[name] = (obj.dtype.str, obj[()])

    with h5py.File(path, "r") as f:
        out["@"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
        f.visititems(visit)
    return out


@pytest.mark.parametrize("family", sorted(MAKERS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_bitwise(tmp_path, family, dtype):
    model = MAKERS[family](dtype)
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    refode.save(model, first)
    loaded = refode.load(first)
    assert type(loaded) is type(model) and loaded.dtype == np.dtype(dtype)
    for kind in ("params", "state"):
        want, got = getattr(model, kind), getattr(loaded, kind)
        assert sorted(want) == sorted(got)
        for name in want:
            assert got[name].dtype == want[name].dtype
            assert got[name].tobytes() == want[name].tobytes(), name
    refode.save(loaded, second)
    a, b = _dump(first), _dump(second)
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], tuple):
            assert a[key][0] == b[key][0] and a[key][1].tobytes() == b[key][1].tobytes(), key
        else:
            assert a[key] == b[key], key


def test_loaded_model_computes_the_same_outputs(saved):
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    model = refode.load(saved["net", "float64"])
    again = refode.load(saved["net", "float64"])
    assert np.array_equal(model.forward(x), again.forward(x))


def _text(value):
    """A text attribute as docs/format.md says: fixed-length UTF-8, read as bytes."""
    assert isinstance(value, bytes)
    return value.decode("utf-8")


def test_layout_follows_docs_with_h5py_only(saved):
    """Read a file as docs/format.md describes, without refode."""
    net = MAKERS["net"]()
    with h5py.File(saved["net", "float64"], "r") as f:
        assert _text(f.attrs["format"]) == "refode-weights"
        assert f.attrs["format_version"] == 2
        assert _text(f.attrs["dtype"]) == "float64"
        assert _text(f.attrs["model"]) == "ContinuousNet"
        assert _text(f.attrs["refode_version"]) == refode.__version__
        cfg = json.loads(f.attrs["config"])
        assert cfg == {"in_channels": 1, "n_classes": 3, "widths": [4, 8],
                       "basis": "piecewise_constant", "n_basis": 2, "scheme": "euler",
                       "n_steps": 2, "head_activation": "none", "padding": "symmetric",
                       "rate_scale": 1.0, "stitch_scale": 1.0}
        k = cfg["n_basis"]
        assert sorted(f) == ["blocks", "params", "state"]
        assert sorted(f["blocks"]) == ["block1", "block2"]
        for j, w in enumerate(cfg["widths"], start=1):
            attrs = f["blocks"][f"block{j}"].attrs
            assert _text(attrs["basis"]) == "piecewise_constant" and attrs["n_basis"] == k
            assert list(attrs["interval"]) == [0.0, 1.0]
            assert _text(attrs["scheme"]) == "euler" and attrs["n_steps"] == 2
            assert f["params"][f"block{j}.conv1.weight"].shape == (k, w, w, 3, 3)  # K + OIHW
            assert f["params"][f"block{j}.bn2.gamma"].shape == (k, w)
            assert f["state"][f"block{j}.bn1.var"].shape == (k, w)
        assert f["params"]["stem_conv.weight"].shape == (4, 1, 3, 3)
        assert f["params"]["stitch2.branch.conv1.weight"].shape == (8, 4, 3, 3)
        assert f["params"]["stitch2.shortcut.conv.weight"].shape == (8, 4, 1, 1)
        assert "stitch1.shortcut.conv.weight" not in f["params"]
        assert f["params"]["dense.weight"].shape == (3, 8)                     # (out, in)
        assert sorted(f["params"]) == sorted(net.params)
        assert sorted(f["state"]) == sorted(net.state)
        for group in ("params", "state"):
            for name, ds in f[group].items():
                assert ds.dtype == np.float64 and ds.chunks is None          # contiguous
                digest = hashlib.sha256(ds[()].tobytes()).digest()
                assert ds.attrs["sha256"].tobytes() == digest, name


def test_tagger_layout_with_h5py_only(saved):
    with h5py.File(saved["tagger", "float32"], "r") as f:
        cfg = json.loads(f.attrs["config"])
        k, d, ffn = cfg["n_basis"], cfg["width"], cfg["ffn"]
        assert _text(f.attrs["dtype"]) == "float32"
        assert list(f["blocks"]) == ["ode"] and list(f["state"]) == []
        assert f["params"]["ode.attn_weights"].shape == (k, 4, d, d)
        assert f["params"]["ode.mlp_w1"].shape == (k, ffn, d)
        assert f["params"]["embed.weight"].shape == (cfg["vocab_size"], d)
        assert f["params"]["head.weight"].shape == (cfg["n_tags"], d)


def test_a_file_written_with_h5py_only_loads(tmp_path, saved):
    """Write a file from scratch with h5py following the document; refode loads it."""
    source = refode.load(saved["net", "float64"])
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "refode-weights", "format_version": 1,
                        "refode_version": "other-1.0", "dtype": "float64",
                        "model": "ContinuousNet"})
        f.attrs["config"] = json.dumps({"in_channels": 1, "n_classes": 3, "widths": [4, 8],
                                        "basis": "piecewise_constant", "n_basis": 2,
                                        "scheme": "euler", "n_steps": 2})
        for block in ("block1", "block2"):
            f.create_group(f"blocks/{block}").attrs.update(
                {"basis": "piecewise_constant", "n_basis": 2, "interval": [0.0, 1.0],
                 "scheme": "euler", "n_steps": 2})
        for kind in ("params", "state"):
            grp = f.create_group(kind)
            for name, arr in getattr(source, kind).items():
                grp.create_dataset(name, data=arr)
    model = refode.load(path)
    assert all(np.array_equal(model.params[n], source.params[n]) for n in source.params)


def test_failed_save_leaves_nothing_and_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "net.h5"
    target.write_bytes(b"old")

    def boom(group, model):
        group.create_dataset("partial", data=np.zeros(3))
        raise RuntimeError("disk full")

    monkeypatch.setattr(weights, "write_model", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        refode.save(MAKERS["net"](), target)
    assert os.listdir(tmp_path) == ["net.h5"] and target.read_bytes() == b"old"


def test_save_refuses_other_objects(tmp_path):
    with pytest.raises(RefodeError, match="ContinuousNet or ContinuousTagger"):
        refode.save(object(), tmp_path / "x.h5")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("family", sorted(MAKERS))
def test_the_layout_is_the_models_architecture(tmp_path, family):
    """io.layout holds no copy of an architecture: keys, choices and shapes are the
    model class's, and a file's configuration is the model's ``config``."""
    from refode.io import config as io_config, layout

    model = MAKERS[family]()
    cls = type(model)
    assert layout.CONFIG_KEYS[cls.FAMILY] == {k: f.kind for k, f in cls.FIELDS.items()}
    assert layout.shapes(cls.FAMILY, model.config) == cls.shapes(model.config)
    refode.save(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as fh:
        assert json.loads(fh.attrs["config"].decode()) == model.config
    for key, field in cls.FIELDS.items():
        if field.choices is None:
            continue
        bad = json.dumps({**model.config, key: "no-such-choice"})
        with pytest.raises(RefodeError, match=f"unknown `{key}`"):
            io_config.check_config(cls.FAMILY, bad, "")
