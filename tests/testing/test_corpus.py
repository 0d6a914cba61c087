"""data/golden/ regenerates bitwise: any drift of refode's numerics is caught here."""
import importlib.util
import json

import h5py
import numpy as np

from .conftest import CORPUS

#: attributes that may differ between refode versions without a change of numbers.
VOLATILE = ("refode_version",)
#: on a machine whose libraries differ from the corpus's (``MACHINE.json``): the bound on
#: ``max |new - old|`` per floating-point array, in epsilons of its dtype times the largest
#: magnitude of the array or of any dataset of its file (a gradient that is zero but for
#: round-off has no scale of its own). Measured between an AVX2 and an AVX-512 machine:
#: at most 1 epsilon of that scale (up to 7 float64 and 37 float32 epsilons of an array's
#: own largest entry; ``data/golden/make.py``).
FOREIGN_EPS = 32


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
    """Bitwise where this machine's BLAS and NumPy are those the corpus was made with;
    elsewhere every float array within :data:`FOREIGN_EPS` epsilons of scale and everything else
    (shapes, dtypes, integers, strings, attributes but the checksums of the arrays)
    exactly."""
    make = _make_module()
    fresh = make.make(tmp_path)
    assert len(fresh) == len(corpus_files)
    made_on = json.loads((CORPUS / make.MACHINE_FILE).read_text())
    assert json.loads((tmp_path / make.MACHINE_FILE).read_text()) == make.machine()
    same_machine = made_on == make.machine()
    for new in map(type(corpus_files[0]), fresh):
        old, now = _contents(CORPUS / new.name), _contents(new)
        assert old.keys() == now.keys(), new.name
        scale = max(np.max(np.abs(v[1]), initial=0) for v in old.values()
                    if v[0] == "dataset" and np.asarray(v[1]).dtype.kind == "f")
        for key, value in old.items():
            assert value[0] == now[key][0] and value[2:] == now[key][2:], (new.name, key)
            a, b = np.asarray(value[1]), np.asarray(now[key][1])
            assert a.shape == b.shape, (new.name, key)
            if same_machine or (a.dtype.kind != "f" and not key.endswith("@sha256")):
                assert a.tobytes() == b.tobytes(), (new.name, key, made_on, make.machine())
            elif a.dtype.kind == "f":
                bound = FOREIGN_EPS * np.finfo(a.dtype).eps * max(np.max(np.abs(a)), scale)
                assert np.max(np.abs(a - b), initial=0) <= bound, (new.name, key)


def test_corpus_describes_the_machine_it_was_made_on():
    """``MACHINE.json`` names the BLAS (library, version, kernels) and NumPy of the corpus."""
    made_on = json.loads((CORPUS / _make_module().MACHINE_FILE).read_text())
    assert set(made_on) == {"blas", "numpy", "numpy_simd"}
    assert made_on["blas"] and all(len(lib) == 3 and all(lib) for lib in made_on["blas"])
    assert made_on["numpy"] and made_on["numpy_simd"]
