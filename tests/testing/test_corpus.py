"""data/golden/ regenerates bitwise: any drift of refode's numerics is caught here."""
import importlib.util

import h5py
import numpy as np

from .conftest import CORPUS

#: attributes that may differ between refode versions without a change of numbers.
VOLATILE = ("refode_version",)


def _make_module():
    spec = importlib.util.spec_from_file_location("golden_make", CORPUS / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _contents(path):
    """``{object path: (kind, value)}``: every attribute and dataset of an HDF5 file."""
    out = {}

    def attrs(name, obj):
        for key, value in obj.attrs.items():
            if key not in VOLATILE:
                out[f"{name}@{key}"] = ("attr", np.asarray(value))

    def visit(name, obj):
        attrs(name, obj)
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", obj[()], obj.dtype.str)

    with h5py.File(path, "r") as fh:
        attrs("/", fh)
        fh.visititems(visit)
    return out


def test_corpus_covers_what_it_claims(corpus_files):
    make = _make_module()
    assert sorted(p.stem for p in corpus_files) == sorted(make.CASES)
    assert sum(p.stat().st_size for p in corpus_files) < 600_000
    configs = [c for c, _, _ in make.CASES.values()]
    assert {c.get("model", "ContinuousNet") for c in configs} == {"ContinuousNet",
                                                                  "ContinuousTagger"}
    assert {d for _, d, _ in make.CASES.values()} == {"float64", "float32"}
    assert {m for _, _, m in make.CASES.values()} == {"train", "eval"}
    assert len({c["basis"] for c in configs}) >= 6 and len({c["scheme"] for c in configs}) >= 6


def test_corpus_regenerates_bitwise(tmp_path, corpus_files):
    fresh = _make_module().make(tmp_path)
    assert len(fresh) == len(corpus_files)
    for new in map(type(corpus_files[0]), fresh):
        old, now = _contents(CORPUS / new.name), _contents(new)
        assert old.keys() == now.keys(), new.name
        for key, value in old.items():
            assert value[0] == now[key][0] and value[2:] == now[key][2:], (new.name, key)
            a, b = np.asarray(value[1]), np.asarray(now[key][1])
            assert a.shape == b.shape and a.tobytes() == b.tobytes(), (new.name, key)
