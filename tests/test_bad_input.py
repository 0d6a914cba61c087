"""Bad input never becomes ground truth (issue 15): one test per row of the issue's table.

Each row shows a clear one-line error (exit 2 on the command line) or, for the
overwrite cases, that the input file is byte-identical afterwards. The hang and memory
cases run in a subprocess with a timeout and must fail in under
:data:`FAIL_FAST_S` seconds (measured in the subprocess, after importing refode).
"""
import functools
import json
import os
import subprocess
import sys
import tempfile
import warnings

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refode
from refode import cli
from refode.errors import RefodeError, RefodeWarning
from refode.io import golden, reference

from tests.io.conftest import small_net, small_tagger

#: the hang and memory cases must fail within this many seconds.
FAIL_FAST_S = 2.0
#: wall-clock limit of one timed subprocess (import included).
SUBPROCESS_TIMEOUT_S = 120
#: relative tolerance of the hand-computed cross-entropy.
LOSS_RTOL = 1e-12
#: images of the label tests (4 images of one channel, 6 x 6).
BATCH, SIDE = 4, 6


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A weight file, a train-mode golden file and data sets, written once."""
    folder = tmp_path_factory.mktemp("bad")
    net = small_net()
    refode.save(net, folder / "net.h5")
    assert cli.main(["golden", str(folder / "net.h5"), "-o", str(folder / "golden.h5"),
                     "--batch", "3"]) == 0
    x = np.random.default_rng(0).standard_normal((BATCH, 1, SIDE, SIDE))
    sets = {"short": (x, np.array([0, 1, 2])), "range": (x, np.array([7, 0, 1, 2])),
            "empty": (x[:0], np.zeros(0, np.int64)), "complex": (x + 1j, np.arange(BATCH) % 3)}
    for name, (xs, ys) in sets.items():
        np.savez(folder / f"{name}.npz", x=xs, y=ys)
    return folder


def _one_line_exit_2(argv, capsys, *needles):
    """``refode argv`` exits 2 with one line on stderr containing every needle."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:   # argparse's usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


#: the hang and memory cases, timed in one fresh Python (``NET``, ``OUT``: paths).
TIMED_API = {
    "odeint": "refode.odeint(RATE, np.ones((2, 3)), W, B, n_steps=10**12)",
    "gradient": "refode.gradient(RATE, np.ones((2, 3)), W, B, np.ones((2, 3)), n_steps=10**12)",
    "basis": "refode.basis('piecewise_constant', 10**9)",
    "seeded_inputs": "reference.seeded_inputs(refode.load(NET), 0, 10**8)",
}
TIMED_CLI = {
    "n_basis_1e8": ["compress", "NET", "OUT", "--basis", "piecewise_constant", "--n-basis",
                    "100000000"],
    "n_basis_4097": ["compress", "NET", "OUT", "--basis", "piecewise_constant", "--n-basis",
                     "4097"],
    "n_steps_1e7": ["compress", "NET", "OUT", "--basis", "piecewise_constant", "--n-basis", "2",
                    "--n-steps", "10000000"],
    "convergence": ["convergence", "NET", "--n-steps", "2", "1000000"],
    "golden_batch": ["golden", "NET", "-o", "OUT", "--batch", "100000000"],
}
TIMER = """
import contextlib, io, json, sys, time
import numpy as np
import refode
from refode import cli
from refode.io import reference
NET, OUT = sys.argv[1], sys.argv[2]
RATE, B = refode.rates.DenseTanh(), refode.basis("piecewise_constant", 2)
W = refode.rates.init_coefficients(B, 3, np.random.default_rng(0))
api, argvs, out = json.loads(sys.argv[3]), json.loads(sys.argv[4]), {}
for name, code in api.items():
    start = time.perf_counter()
    try:
        eval(code)
        message = "NO ERROR"
    except refode.RefodeError as exc:
        message = " ".join(str(exc).split())
    out[name] = [time.perf_counter() - start, message]
for name, argv in argvs.items():
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main([{"NET": NET, "OUT": OUT}.get(a, a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    out[name] = [time.perf_counter() - start, code, err.getvalue().strip()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def timed(files):
    """``{case: [seconds, ...]}`` of :data:`TIMED_API` and :data:`TIMED_CLI`, each timed
    alone in one fresh Python with a timeout (after importing refode)."""
    out = files / "timed_out.h5"
    proc = subprocess.run([sys.executable, "-c", TIMER, str(files / "net.h5"), str(out),
                           json.dumps(TIMED_API), json.dumps(TIMED_CLI)],
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------- row 1: labels, the API
@pytest.mark.parametrize("y, error, needle", [
    ([7, 0, 1, 2], RefodeError, "outside [0, 3) (e.g. 7)"),
    ([-1, 0, 1, 2], RefodeError, "outside [0, 3) (e.g. -1)"),
    ([1.5, 0, 1, 2], refode.ShapeError, "has dtype float64"),
    ([0, 1, 2], refode.ShapeError, "has shape (3,)"),
    ([[0], [1], [2], [0]], refode.ShapeError, "has shape (4, 1)"),
    ([True, False, True, False], refode.ShapeError, "has dtype bool"),
])
def test_loss_and_gradients_refuse_bad_labels(y, error, needle):
    net = small_net()
    x = np.random.default_rng(0).standard_normal((BATCH, 1, SIDE, SIDE))
    for call in (net.loss_and_gradients, net.loss):
        with pytest.raises(error) as info:
            call(x, np.asarray(y))
        message = str(info.value)
        assert needle in message and "`y`" in message and "\n" not in message


def test_tagger_labels_out_of_range_or_wrong_shape_are_refused():
    tagger = small_tagger()
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    for y, needle in (([[0, 1, 5], [0, 0, 0]], "outside [0, 5) or -100"),
                      ([[0, 1, -1], [0, 0, 0]], "(e.g. -1)"),
                      ([[0, 1], [0, 0]], "has shape (2, 2)"),
                      ([[0.0, 1, 2], [0, 0, 0]], "has dtype float64")):
        with pytest.raises(RefodeError, match="`y`") as info:
            tagger.loss_and_gradients(ids, np.asarray(y))
        assert needle in str(info.value)


# ----------------------------------------------------- row 2: golden --inputs with bad labels
def test_golden_inputs_with_three_labels_for_four_images_exit_2(files, tmp_path, capsys):
    out = tmp_path / "g.h5"
    _one_line_exit_2(["golden", files / "net.h5", "-o", out, "--inputs", files / "short.npz"],
                     capsys, "`y` has shape (3,)")
    assert not out.exists()


# ------------------------------------------------------- row 3: eval with bad data sets
@pytest.mark.parametrize("name, needle", [
    ("range", "outside [0, 3)"), ("empty", "holds no samples"),
    ("complex", "dtype complex128")])
def test_eval_refuses_bad_labels_empty_data_and_complex_images(files, capsys, name, needle):
    _one_line_exit_2(["eval", files / "net.h5", "--data", files / f"{name}.npz"], capsys,
                     needle, f"--data {files / name}.npz")


# ----------------------------------------------------------- row 4: complex candidates
def test_check_refuses_a_complex_candidate(files, tmp_path, capsys):
    cand = tmp_path / "cand.h5"
    with h5py.File(files / "golden.h5", "r") as src, h5py.File(cand, "w") as dst:
        for group in ("outputs", "gradients"):
            src.copy(group, dst)
        logits = dst["outputs/logits"][()]
        del dst["outputs/logits"]
        dst["outputs/logits"] = logits + 1e6j
    _one_line_exit_2(["check", files / "golden.h5", cand], capsys,
                     "/outputs/logits: complex dtype complex128")


# ------------------------------------------------ row 5: compress IN IN, also by a link
def test_compress_onto_its_input_is_refused_and_the_input_is_untouched(files, tmp_path,
                                                                       capsys):
    src = tmp_path / "in.h5"
    src.write_bytes((files / "net.h5").read_bytes())
    link = tmp_path / "link.h5"
    link.symlink_to(src)
    before = src.read_bytes()
    flags = ["--basis", "piecewise_constant", "--n-basis", "1"]
    for a, b in ((src, src), (src, link), (link, src)):
        _one_line_exit_2(["compress", a, b, *flags], capsys, "would destroy the input",
                         "--force")
        assert src.read_bytes() == before and link.is_symlink()
    assert cli.main(["compress", str(src), str(src), *flags, "--force"]) == 0
    assert refode.load(src).basis.n == 1


# ------------------------------------ row 6: golden over the weight file (and the reverse)
def test_golden_never_replaces_a_weight_file_nor_compress_a_golden_file(files, tmp_path,
                                                                        capsys):
    net, other = tmp_path / "net.h5", tmp_path / "other.h5"
    for path in (net, other):
        path.write_bytes((files / "net.h5").read_bytes())
    weights = net.read_bytes()
    _one_line_exit_2(["golden", net, "-o", net], capsys, "is the input")
    _one_line_exit_2(["golden", net, "-o", other], capsys, "is a refode weight file",
                     "--force")
    assert net.read_bytes() == weights and other.read_bytes() == weights
    gold = tmp_path / "g.h5"
    gold.write_bytes((files / "golden.h5").read_bytes())
    before = gold.read_bytes()
    _one_line_exit_2(["compress", net, gold, "--basis", "piecewise_constant", "--n-basis",
                      "1"], capsys, "is a refode golden file")
    assert gold.read_bytes() == before
    assert cli.main(["golden", str(net), "-o", str(gold)]) == 0   # golden over golden: fine
    capsys.readouterr()


# ----------------------------------------- row 7: sizes that ran for minutes now fail fast
@pytest.mark.parametrize("case, needle", [
    ("n_basis_1e8", "--n-basis must be an integer from 1 to 4096, got '100000000'"),
    ("n_basis_4097", "--n-basis must be an integer from 1 to 4096, got '4097'"),
    ("n_steps_1e7", "--n-steps must be an integer from 1 to 100000, got '10000000'"),
    ("convergence", "--n-steps must be an integer from 1 to 100000, got '1000000'"),
])
def test_cli_size_caps_fail_fast(timed, case, needle):
    seconds, code, err = timed[case]
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert seconds < FAIL_FAST_S


@pytest.mark.parametrize("case", ["odeint", "gradient"])
def test_odeint_and_gradient_with_10_to_the_12_steps_fail_fast(timed, case):
    seconds, message = timed[case]
    assert "`n_steps` is 1,000,000,000,000" in message and "cap of 100,000" in message
    assert seconds < FAIL_FAST_S


# ----------------------------------------------------- row 8: a basis of 10**9 functions
def test_a_basis_of_a_billion_functions_fails_fast(timed):
    seconds, message = timed["basis"]
    assert "`n` is 1,000,000,000" in message and "4,096" in message
    assert seconds < FAIL_FAST_S


# ------------------------------------- row 9: never write a file that load then refuses
def test_compress_n_steps_100001_is_refused_and_save_refuses_what_load_refuses(
        files, tmp_path, capsys):
    out = tmp_path / "o.h5"
    _one_line_exit_2(["compress", files / "net.h5", out, "--basis", "piecewise_constant",
                      "--n-basis", "2", "--n-steps", "100001"], capsys, "--n-steps must be")
    with pytest.raises(RefodeError, match="n_steps"):
        refode.load(files / "net.h5").rediscretize(n_steps=100_001)
    net = small_net()
    net.n_steps = 100_001                                  # edited by hand past the cap
    with pytest.raises(RefodeError, match="refode.load would refuse"):
        refode.save(net, out)
    net = small_net()
    net.params["dense.bias"][0] = np.nan
    with pytest.raises(RefodeError, match=r"dense.bias.*non-finite"):
        refode.save(net, out)
    assert not out.exists()


# --------------------------------------------------------- row 10: golden --batch 1e8
def test_golden_batch_of_a_hundred_million_fails_fast(timed):
    seconds, code, err = timed["golden_batch"]
    assert code == 2 and "--batch must be an integer from 1 to 65536" in err, err
    assert len(err.splitlines()) == 1 and seconds < FAIL_FAST_S
    seconds, message = timed["seeded_inputs"]
    assert "`batch` is 100,000,000" in message and seconds < FAIL_FAST_S


# -------------------------------- row 11: shapes against the weights, empty batches, L = 0
def test_wrong_channels_empty_batches_and_weight_dicts_name_the_argument():
    net, tagger = small_net(), small_tagger()
    cases = [
        (lambda: net.forward(np.zeros((2, 3, SIDE, SIDE))), "`x` has 3 channels"),
        (lambda: net.forward(np.zeros((0, 1, SIDE, SIDE))), "holds no images"),
        (lambda: net.loss_and_gradients(np.zeros((0, 1, SIDE, SIDE)), np.zeros(0, int)),
         "holds no images"),
        (lambda: net.loss_and_gradients(np.ones((1, 1, 1, 1)), [0]), "at least 2"),
        (lambda: tagger.forward(np.zeros((2, 0), int)), "no sentences or no tokens"),
        (lambda: tagger.loss_and_gradients(np.zeros((0, 3), int), np.zeros((0, 3), int)),
         "no sentences or no tokens"),
    ]
    rate, b = refode.rates.DenseTanh(), refode.basis("piecewise_constant", 2)
    w = refode.rates.init_coefficients(b, 4, np.random.default_rng(0))
    cases += [
        (lambda: refode.odeint(rate, np.ones((3, 4)), {"W": w["W"]}, b, n_steps=2),
         "(missing 'b')"),
        (lambda: refode.odeint(rate, np.ones((3, 5)), w, b, n_steps=2),
         "`coefficients['W']` has shape (2, 4, 4) but `h0` of shape (3, 5)"),
        (lambda: refode.gradient(rate, np.ones((3, 4)), {**w, "c": w["b"]}, b, np.ones((3, 4)),
                                 n_steps=2), "(unknown 'c')"),
    ]
    for call, needle in cases:
        with pytest.raises(RefodeError) as info:
            call()
        assert needle in str(info.value)


# ---------------------------------------- row 12: a running variance negative at a stage
def test_negative_running_variance_is_reported_by_load_and_info(tmp_path, capsys):
    net = refode.models.ContinuousNet(in_channels=1, n_classes=3, widths=(4, 8),
                                      basis="fem_linear", n_basis=3, scheme="rk4", n_steps=4)
    net.net.layers["block2"].state["bn1.var"][1, :3] = -0.5
    path = tmp_path / "neg.h5"
    refode.save(net, path)
    with pytest.warns(RefodeWarning, match=r"neg.h5: running variance \+ eps <= 0 at 6 "
                      r"stage\(s\): block2.bn1.var at step 1 stage 1 \(t = 0.375"):
        refode.load(path)
    assert cli.main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "warning: running variance + eps <= 0 at 6 stage(s): block2.bn1.var" in out
    assert err == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refode.save(small_net(), tmp_path / "ok.h5")
        refode.load(tmp_path / "ok.h5")   # positive statistics: no warning


# --------------------------------------------------- row 13: argparse messages name the flag
@pytest.mark.parametrize("argv, needle", [
    (["compress", "a.h5", "b.h5", "--basis", "legendre", "--n-basis", "2.5"],
     "refode compress: error: --n-basis must be an integer from 1 to 4096, got '2.5'"),
    (["golden", "a.h5", "-o", "g.h5", "--seed", "-1"],
     "refode golden: error: --seed must be an integer >= 0, got '-1'"),
    (["eval", "a.h5", "--data", "d.npz", "--limit", "0"],
     "refode eval: error: --limit must be an integer >= 1, got '0'"),
])
def test_flag_types_name_the_flag_and_the_rule(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(needle) and len(err.splitlines()) == 1, err


# ----------------------------------------------------------- row 14: a closed stdout
def test_info_into_a_closed_pipe_exits_quietly(files):
    proc = subprocess.Popen([sys.executable, "-m", "refode", "info", str(files / "golden.h5")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()   # the reader is gone before anything is written (| head -0)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=SUBPROCESS_TIMEOUT_S) == 0 and err == ""


def test_broken_pipe_inside_main_returns_0(files, monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert cli.main(["info", str(files / "net.h5")]) == 0


# ------------------------------------------------------ row 15: text attributes as text
def test_info_prints_text_attributes_as_text(files, capsys):
    assert cli.main(["info", str(files / "golden.h5")]) == 0
    out = capsys.readouterr().out
    assert "mode train, scheme euler" in out and "b'" not in out
    assert "running statistics after the step" in out


# ----------------------------------------------- random labels: a loss or a RefodeError
DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint64", "float64",
          "float32", "bool")
SHAPES = {"batch": lambda n: (n,), "short": lambda n: (n - 1,), "long": lambda n: (n + 1,),
          "column": lambda n: (n, 1), "scalar": lambda n: (), "row": lambda n: (1, n)}


def _cross_entropy(logits, y, ignore=None):
    """Mean cross-entropy by hand (float64): ``logsumexp(z) - z[y]`` over counted rows."""
    z = np.asarray(logits, np.float64).reshape(-1, logits.shape[-1])
    t = np.asarray(y).reshape(-1)
    keep = np.ones(t.shape, bool) if ignore is None else t != ignore
    top = z.max(axis=1)
    lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    rows = np.flatnonzero(keep)
    return float(np.sum(lse[rows] - z[rows, t[rows]]) / max(rows.size, 1))


def _labels(draw, shape, values):
    dtype = draw(st.sampled_from(DTYPES))
    size = int(np.prod(shape, dtype=int))
    values = draw(st.lists(values, min_size=size, max_size=size))
    with np.errstate(all="ignore"):
        return np.asarray(values, dtype=np.int64).reshape(shape).astype(dtype)


@st.composite
def net_labels(draw):
    shape = SHAPES[draw(st.sampled_from(sorted(SHAPES)))](BATCH)
    return _labels(draw, shape, st.one_of(st.integers(0, 2), st.integers(-3, 5)))


@st.composite
def tagger_labels(draw):
    shape = draw(st.sampled_from([(2, 3), (2, 2), (3, 3), (6,)]))
    return _labels(draw, shape, st.one_of(st.integers(0, 4),
                                          st.sampled_from([-100, -101, -1, 5, 255])))


def _valid(y, shape, n_classes, ignore=None):
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer) or y.shape != shape:
        return False
    return bool(np.all(((y >= 0) & (y < n_classes)) | (y == ignore if ignore else False)))


@functools.lru_cache(maxsize=None)
def _net_case():
    """A small net, its images and their training-mode logits (computed once)."""
    net = small_net()
    x = np.random.default_rng(1).standard_normal((BATCH, 1, SIDE, SIDE))
    return net, x, net.forward(x, train=True, update_state=False)


@functools.lru_cache(maxsize=None)
def _tagger_case():
    tagger = small_tagger()
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    return tagger, ids, tagger.forward(ids, train=True)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(y=net_labels())
def test_random_labels_give_the_cross_entropy_or_a_refode_error(y):
    net, x, logits = _net_case()
    valid = _valid(y, (BATCH,), 3)
    results = []
    for run in (lambda: net.loss_and_gradients(x, y, update_state=False)[0],
                lambda: float(reference.compute(net, x, y, "train")["outputs/loss"])):
        try:
            results.append(run())
        except RefodeError:
            results.append(None)
    with tempfile.TemporaryDirectory() as folder:
        try:
            results.append(float(golden.write(os.path.join(folder, "g.h5"), net, x, y)
                                 ["outputs/loss"]))
        except RefodeError:
            results.append(None)
        assert os.listdir(folder) == ([] if not valid else ["g.h5"])
    if not valid:
        assert results == [None] * 3
    else:
        expected = _cross_entropy(logits, y.astype(np.int64))
        for loss in results:
            assert abs(loss - expected) <= LOSS_RTOL * abs(expected)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(y=tagger_labels())
def test_random_tags_give_the_cross_entropy_or_a_refode_error(y):
    tagger, ids, logits = _tagger_case()
    valid = _valid(y, ids.shape, 5, ignore=-100)
    results = []
    for run in (lambda: tagger.loss_and_gradients(ids, y)[0],
                lambda: float(reference.compute(tagger, ids, y, "train")["outputs/loss"])):
        try:
            results.append(run())
        except RefodeError:
            results.append(None)
    if not valid:
        assert results == [None, None]
    else:
        expected = _cross_entropy(logits, y.astype(np.int64), ignore=-100)
        for loss in results:
            assert abs(loss - expected) <= LOSS_RTOL * max(abs(expected), 1e-300)
