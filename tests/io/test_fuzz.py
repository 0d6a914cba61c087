"""Fuzzing the reader: malformed files raise FormatError naming the path inside the file.

Every case starts from a valid small file and breaks one thing (not HDF5, truncated,
missing or extra members and attributes, wrong shapes/dtypes/ranks, K inconsistent with
the basis, NaN/Inf, unknown version, broken JSON, absurd sizes). ``refode.load`` must
raise :class:`FormatError` whose message starts with the expected path, and
``refode info`` must exit 2 with one line and no traceback; nothing may hang or leave
files behind.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

import refode
from refode import cli
from refode.errors import FormatError

from .conftest import small_net, small_tagger

#: seconds a single case may take before it counts as a hang.
HANG_SECONDS = 20
#: truncation points (fractions of the file size).
CUTS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99)

NET_CONFIG = {"in_channels": 1, "n_classes": 3, "widths": [4, 8], "basis": "piecewise_constant",
              "n_basis": 2, "scheme": "euler", "n_steps": 2}
NET_PARAMS = sorted(small_net().params)
NET_STATE = sorted(small_net().state)
TAGGER_PARAMS = sorted(small_tagger().params)


# ---------------------------------------------------------------- mutations
def _raw(data):
    def mutate(path):
        path.write_bytes(data)
    return mutate


def _truncate(fraction):
    def mutate(path):
        raw = path.read_bytes()
        path.write_bytes(raw[:int(len(raw) * fraction)])
    return mutate


def _h5(edit):
    def mutate(path):
        with h5py.File(path, "r+") as f:
            edit(f)
    return mutate


def _set_attr(where, name, value):
    return _h5(lambda f: f[where].attrs.__setitem__(name, value))


def _del_attr(where, name):
    return _h5(lambda f: f[where].attrs.__delitem__(name))


def _config(change):
    def edit(f):
        cfg = json.loads(f.attrs["config"])
        change(cfg)
        f.attrs["config"] = json.dumps(cfg)
    return _h5(edit)


def _replace(name, make):
    def edit(f):
        old = f[name][()]
        del f[name]
        f.create_dataset(name, data=make(old))
    return _h5(edit)


def _poison(name, value):
    def make(old):
        new = old.copy()
        new.reshape(-1)[new.size // 2] = value
        return new
    return _replace(name, make)


def _cases_not_hdf5():
    yield "empty", _raw(b""), "/"
    yield "text", _raw(b"hello, I am not an HDF5 file\n" * 10), "/"
    yield "random", _raw(np.random.default_rng(0).bytes(4096)), "/"
    yield "hdf5-magic-only", _raw(b"\x89HDF\r\n\x1a\n" + b"\0" * 100), "/"
    for cut in CUTS:
        yield f"truncated-{cut}", _truncate(cut), "/"


def _cases_root():
    for name in ("format", "format_version", "refode_version", "dtype", "model", "config"):
        yield f"no-attr-{name}", _del_attr("/", name), f"/@{name}"
    for name, value in (("format", "hdf5-weights"), ("format", 7), ("format_version", 3),
                        ("format_version", 0), ("format_version", "1"),
                        ("format_version", True), ("format_version", 1.5),
                        ("dtype", "float16"), ("dtype", "int64"), ("dtype", 64),
                        ("model", "ResNet"), ("model", 3), ("refode_version", 1),
                        ("config", 5)):
        yield f"attr-{name}-{value!r}", _set_attr("/", name, value), f"/@{name}"
    for name in ("params", "state", "blocks"):
        yield f"no-group-{name}", _h5(lambda f, n=name: f.__delitem__(n)), f"/{name}"
    yield "params-is-dataset", _h5(lambda f: (f.__delitem__("params"),
                                              f.create_dataset("params", data=[1.0]))), "/params"
    yield "extra-root-group", _h5(lambda f: f.create_group("extras")), "/extras"
    yield "extra-root-dataset", _h5(lambda f: f.create_dataset("notes", data=[1])), "/notes"


def _cases_config():
    for text in ("", "{", "nul", "[]", "3", '{"a": }', '"string"', "{'single': 1}"):
        yield f"json-{text!r}", _set_attr("/", "config", text), "/@config"
    for key in NET_CONFIG:
        yield f"cfg-missing-{key}", _config(lambda c, k=key: c.pop(k)), "/@config"
        yield f"cfg-string-{key}", _config(lambda c, k=key: c.__setitem__(
            k, "x" if not isinstance(c[k], str) else 3)), "/@config"
        yield f"cfg-null-{key}", _config(lambda c, k=key: c.__setitem__(k, None)), "/@config"
    yield "cfg-extra-key", _config(lambda c: c.__setitem__("dropout", 0.1)), "/@config"
    for key in ("in_channels", "n_classes", "n_basis", "n_steps"):
        for bad in (0, -3, True, 2.5):
            yield f"cfg-{key}-{bad!r}", _config(lambda c, k=key, b=bad: c.__setitem__(k, b)), \
                "/@config"
    for widths in ([], [0, 8], [4, -8], [4, 8.5], [4, "8"], [True, 8]):
        yield f"cfg-widths-{widths!r}", _config(lambda c, w=widths: c.__setitem__("widths", w)), \
            "/@config"
    for family, k in (("piecewise_linear", 3), ("fourier", 2), ("fem_linear", 1),
                      ("no_such_basis", 2)):
        yield f"cfg-basis-{family}-{k}", _config(
            lambda c, f=family, n=k: c.update(basis=f, n_basis=n)), "/@config"
    yield "cfg-scheme", _config(lambda c: c.__setitem__("scheme", "rk99")), "/@config"
    for key, big in (("n_basis", 10 ** 9), ("n_steps", 10 ** 12), ("widths", [10 ** 6] * 2),
                     ("in_channels", 10 ** 15), ("n_classes", 10 ** 30),
                     ("widths", [4] * 10 ** 5)):
        yield f"cfg-absurd-{key}-{len(str(big))}", _config(
            lambda c, k=key, v=big: c.__setitem__(k, v)), "/@config"
    yield "cfg-k-mismatch", _config(lambda c: c.__setitem__("n_basis", 4)), "/blocks/block1@n_basis"


def _cases_blocks():
    yield "block-missing", _h5(lambda f: f.__delitem__("blocks/block2")), "/blocks/block2"
    yield "block-extra", _h5(lambda f: f.create_group("blocks/block9")), "/blocks/block9"
    for name, value in (("basis", "legendre"), ("n_basis", 3), ("scheme", "rk4"),
                        ("n_steps", 5), ("interval", [0.0, 2.0]), ("interval", [0.0]),
                        ("n_basis", "2")):
        yield f"block-{name}-{value!r}", _set_attr("/blocks/block1", name, value), \
            f"/blocks/block1@{name}"
    for name in ("basis", "n_basis", "interval", "scheme", "n_steps"):
        yield f"block-no-{name}", _del_attr("/blocks/block2", name), f"/blocks/block2@{name}"


#: how one dataset is broken; every array gets :data:`PER_ARRAY` of them, in turn.
BREAKS = {
    "missing": lambda w: _h5(lambda f: f.__delitem__(w)),
    "dtype": lambda w: _replace(w, lambda a: a.astype(np.float32)),
    "rank": lambda w: _replace(w, lambda a: a[None]),
    "shape": lambda w: _replace(w, lambda a: np.concatenate([a, a])),
    "nan": lambda w: _poison(w, np.nan),
    "inf": lambda w: _poison(w, -np.inf),
}
PER_ARRAY = 3


def small_shape(kind, name):
    """Shape of array ``name`` of ``kind`` in the small ContinuousNet."""
    return getattr(small_net(), kind)[name].shape


def _cases_arrays(kind, names):
    kinds = list(BREAKS)
    for i, name in enumerate(names):
        where = f"{kind}/{name}"
        for j in range(PER_ARRAY):
            brk = kinds[(PER_ARRAY * i + j) % len(kinds)]
            yield f"{brk}-{where}", BREAKS[brk](where), f"/{where}"
    where = f"{kind}/{names[0]}"
    yield f"int-{where}", _replace(where, lambda a: a.astype(np.int64)), f"/{where}"
    yield f"edited-keeping-sha256-{where}", _h5(
        lambda f, w=where: f[w].__setitem__(Ellipsis, f[w][()] + 1.0)), f"/{where}"
    shape = small_shape(kind, names[0])
    yield f"unwritten-{where}", _h5(lambda f, w=where: (
        f.__delitem__(w), f.create_dataset(w, shape=shape, dtype=np.float64))), f"/{where}"
    yield f"bigendian-{where}", _replace(where, lambda a: a.astype(">f8")), f"/{where}"
    yield f"group-{where}", _h5(lambda f, w=where: (f.__delitem__(w), f.create_group(w))), \
        f"/{where}"
    yield f"extra-{kind}", _h5(lambda f, k=kind: f.create_dataset(f"{k}/zz.weight",
                                                                   data=[1.0])), f"/{kind}/zz"


def _cases_tagger():
    for where in ("params/ode.attn_weights", "params/embed.weight"):
        yield f"tagger-nan-{where}", _poison(where, np.nan), f"/{where}"
        yield f"tagger-shape-{where}", _replace(where, lambda a: a[:1]), f"/{where}"
    for key, value in (("heads", 3), ("rate", "post_ln"), ("interval", [1.0, 0.0]),
                       ("interval", [0, "a"]), ("attention_bias", 1), ("vocab_size", 10 ** 12),
                       ("padding_id", "0")):
        yield f"tagger-cfg-{key}-{value!r}", _config(
            lambda c, k=key, v=value: c.__setitem__(k, v)), "/@config"


def all_cases():
    """``(id, family, mutate, expected path prefix)`` of every malformed file."""
    groups = [_cases_not_hdf5(), _cases_root(), _cases_config(), _cases_blocks(),
              _cases_arrays("params", NET_PARAMS), _cases_arrays("state", NET_STATE)]
    for group in groups:
        for case_id, mutate, where in group:
            yield pytest.param("net", mutate, where, id=case_id)
    for case_id, mutate, where in _cases_tagger():
        yield pytest.param("tagger", mutate, where, id=case_id)


CASES = list(all_cases())


def test_there_are_at_least_200_cases():
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging."""
    def alarm(signum, frame):
        raise TimeoutError(f"a malformed file took more than {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _make(tmp_path, saved, family, mutate):
    path = tmp_path / "bad.h5"
    shutil.copyfile(saved[family, "float64"], path)
    mutate(path)
    return path


@pytest.mark.parametrize("family, mutate, where", CASES)
def test_malformed_file_raises_format_error_naming_the_path(tmp_path, saved, capsys, family,
                                                           mutate, where):
    path = _make(tmp_path, saved, family, mutate)
    before = sorted(os.listdir(tmp_path))
    with deadline(HANG_SECONDS):
        with pytest.raises(FormatError) as info:
            refode.load(path)
        message = str(info.value)
        assert message.startswith(where), message
        assert ";" in message  # problem; fix
        assert cli.main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("refode info: error: " + where), lines[0]
    assert sorted(os.listdir(tmp_path)) == before


SUBPROCESS_CASES = [c for c in CASES if c.id in (
    "text", "truncated-0.5", "json-'{'", "nan-params/block1.conv1.weight",
    "cfg-absurd-n_basis-10")]


@pytest.mark.parametrize("family, mutate, where", SUBPROCESS_CASES)
def test_info_as_a_subprocess_prints_one_line(tmp_path, saved, family, mutate, where):
    path = _make(tmp_path, saved, family, mutate)
    res = subprocess.run([sys.executable, "-m", "refode", "info", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert where in res.stderr
    assert os.listdir(tmp_path) == ["bad.h5"]


def test_a_valid_file_passes_the_same_checks(saved, capsys):
    assert cli.main(["info", str(saved["net", "float64"])]) == 0
    assert "block2" in capsys.readouterr().out
