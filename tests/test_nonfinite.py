"""NaN and Inf at every public entry point (the policy of docs/developing.md).

refode is an oracle. A NaN or Inf in what the caller passes (inputs, coefficients,
weights, running statistics, data, cotangents, depths) is a caller error: it raises a
:class:`refode.RefodeError` naming the array, the number of non-finite values and the
kind and index of the first, before any work. A NaN the computation produces from finite
input (the square root of a compressed running variance that went negative) is not an
input error: it is propagated and counted (``evaluate`` and ``refode eval`` count
non-finite logits as wrong predictions).
"""
import re

import h5py
import numpy as np
import pytest

import refode
import refode.integrate
import refode.io.golden
from refode import cli
from refode.errors import BasisError, FormatError, RefodeError, ShapeError
from refode.models import ContinuousNet, ContinuousTagger
from refode.rates import DenseTanh, init_coefficients
from refode.train import evaluate

#: the bad values, as the messages word them.
BAD = {"nan": (np.nan, "NaN"), "inf": (np.inf, r"\+Inf"), "-inf": (-np.inf, "-Inf")}
#: the image batch of the small ContinuousNet, and its labels.
IMAGES, LABELS = (2, 1, 6, 6), np.array([0, 2])
#: token ids (0 is padding) and tags of the small tagger.
IDS = np.array([[3, 4, 0], [5, 1, 2]])
TAGS = np.array([[1, 2, -100], [0, 4, 3]])


def message(name, index, kind, count=1):
    """The regular expression of the error for the array ``name`` (``kind`` a regex)."""
    return (rf"`{re.escape(name)}` contains {count} non-finite value\(s\), the first {kind} "
            rf"at index {re.escape(str(index))}")


def poisoned(array, index, value):
    """A float64 copy of ``array`` with ``value`` at ``index``."""
    out = np.array(array, dtype=np.float64)
    out[index] = value
    return out


def small_net():
    return ContinuousNet(in_channels=1, n_classes=3, widths=(4, 8), n_basis=2, n_steps=2,
                         seed=1)


def small_tagger():
    return ContinuousTagger(vocab_size=11, n_tags=5, width=8, ffn=8, n_basis=2, n_steps=2,
                            seed=2, padding_id=0)


def images(seed=0):
    return np.random.default_rng(seed).standard_normal(IMAGES)


@pytest.fixture(scope="module")
def dense():
    """``(rate, h0, coefficients, basis)`` of a small DenseTanh problem."""
    basis = refode.basis("legendre", 3)
    rng = np.random.default_rng(0)
    return DenseTanh(), rng.standard_normal((2, 4)), init_coefficients(basis, 4, rng), basis


# --------------------------------------------------------------------------------------
# the validator
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", sorted(BAD))
def test_the_message_names_the_array_the_count_and_the_first_bad_index(bad):
    value, kind = BAD[bad]
    arr = np.zeros((3, 4))
    arr[2, 1] = value
    arr[0, 3] = value
    with pytest.raises(RefodeError, match=message("h0", (0, 3), kind, count=2)):
        refode._validate.as_array(arr, "h0")
    with pytest.raises(RefodeError, match=r"`s` contains 1 non-finite value\(s\): the scalar"):
        refode._validate.as_array(np.array(value), "s")
    assert refode._validate.first_nonfinite(np.ones(3)) is None


def test_complex_infinities_and_float32_are_found():
    z = np.ones(3, dtype=np.complex128)
    z[2] = complex(0.0, np.inf)
    with pytest.raises(RefodeError, match=message("z", (2,), "Inf")):
        refode._validate.as_array(z, "z", allow_complex=True)
    f = np.ones((2, 2), dtype=np.float32)
    f[1, 0] = np.nan
    with pytest.raises(RefodeError, match=message("f", (1, 0), "NaN")):
        refode._validate.as_array(f, "f")


# --------------------------------------------------------------------------------------
# bases and changes of basis
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", sorted(BAD))
def test_basis_evaluate(bad):
    value, kind = BAD[bad]
    with pytest.raises(BasisError, match=message("t", (1,), kind)):
        refode.basis("fem_linear", 3).evaluate([0.25, value, 0.5])


@pytest.mark.parametrize("interval", [(0.0, np.nan), (-np.inf, 1.0), (0.0, np.inf)])
def test_a_basis_on_a_non_finite_interval_and_its_mass_matrix(interval):
    with pytest.raises(RefodeError, match="`interval` must satisfy finite t0 < t1"):
        refode.mass(refode.basis("legendre", 3, interval=interval))


CHANGES = {
    "project": lambda c: refode.project(c, refode.basis("fem_linear", 3),
                                        refode.basis("piecewise_constant", 2)),
    "interpolate": lambda c: refode.interpolate(c, refode.basis("fem_linear", 3),
                                                refode.basis("legendre", 2)),
    "refine": lambda c: refode.refine(c, refode.basis("fem_linear", 3)),
}


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_changes_of_basis(change, bad):
    value, kind = BAD[bad]
    with pytest.raises(RefodeError, match=message("coefficients", (1, 1), kind)):
        CHANGES[change](poisoned(np.ones((3, 2)), (1, 1), value))


@pytest.mark.parametrize("bad", sorted(BAD))
def test_fit(bad):
    value, kind = BAD[bad]
    basis = refode.basis("fem_linear", 3)
    points, values = np.linspace(0.0, 1.0, 5), np.ones((5, 2))
    with pytest.raises(RefodeError, match=message("values", (3, 0), kind)):
        refode.fit(points, poisoned(values, (3, 0), value), basis)
    with pytest.raises(RefodeError, match=r"`points` contains 1 non-finite"):
        refode.fit(poisoned(points, 2, value), values, basis)
    with pytest.raises(RefodeError, match=message("previous", (2, 1), kind)):
        refode.fit(points, values, basis, previous=poisoned(np.ones((3, 2)), (2, 1), value))


def test_a_change_of_basis_that_overflows_from_finite_input_returns_it():
    """Not an input error: the result is returned as computed (and is not finite)."""
    big = np.full((3, 1), np.finfo(np.float64).max)
    out = refode.project(big, refode.basis("fem_linear", 3), refode.basis("legendre", 3))
    assert not np.isfinite(out).all()


# --------------------------------------------------------------------------------------
# theta, odeint, gradient, vjp
# --------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(refode, "theta"),
                    reason="refode.theta is not exported yet (helper A, issue 14)")
@pytest.mark.parametrize("bad", sorted(BAD))
def test_theta(dense, bad):
    value, kind = BAD[bad]
    _, _, c, basis = dense
    w = poisoned(c["W"], (2, 0, 1), value)
    with pytest.raises(RefodeError, match=message("coefficients", (2, 0, 1), kind)):
        refode.theta(w, basis, 0.5)
    with pytest.raises(RefodeError, match=message("coefficients['W']", (2, 0, 1), kind)):
        refode.theta({**c, "W": w}, basis, 0.5)
    with pytest.raises(BasisError, match="`t`"):
        refode.theta(c["W"], basis, value)


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("entry", ["odeint", "gradient-discrete", "gradient-continuous", "vjp"])
def test_integration(dense, entry, bad):
    value, kind = BAD[bad]
    rate, h0, c, basis = dense
    ones = np.ones_like(h0)

    def call(h0=h0, c=c, cotangent=ones):
        if entry == "odeint":
            return refode.odeint(rate, h0, c, basis, n_steps=2)
        if entry == "vjp":
            _, backward = refode.integrate.vjp(rate, h0, c, basis, n_steps=2)
            return backward(cotangent)
        method = entry.split("-")[1]
        return refode.gradient(rate, h0, c, basis, cotangent, n_steps=2, method=method)

    with pytest.raises(RefodeError, match=message("h0", (1, 2), kind)):
        call(h0=poisoned(h0, (1, 2), value))
    with pytest.raises(RefodeError, match=message("coefficients['b']", (0, 3), kind)):
        call(c={**c, "b": poisoned(c["b"], (0, 3), value)})
    if entry != "odeint":
        with pytest.raises(RefodeError, match=message("dloss_dhT", (0, 1), kind)):
            call(cotangent=poisoned(ones, (0, 1), value))


def test_integration_of_finite_input_is_not_refused(dense):
    rate, h0, c, basis = dense
    assert np.isfinite(refode.odeint(rate, h0, c, basis, n_steps=2)).all()


# --------------------------------------------------------------------------------------
# the models: inputs, weights, running statistics
# --------------------------------------------------------------------------------------
NET_CALLS = {
    "forward": lambda m, x: m.forward(x),
    "forward-train": lambda m, x: m.forward(x, train=True),
    "loss": lambda m, x: m.loss(x, LABELS),
    "loss_and_gradients": lambda m, x: m.loss_and_gradients(x, LABELS),
    "check_batch": lambda m, x: m.check_batch(x, LABELS),
}


@pytest.mark.parametrize("call", sorted(NET_CALLS))
def test_continuousnet_inputs(call):
    x = poisoned(images(), (1, 0, 2, 3), np.nan)
    with pytest.raises(RefodeError, match=message("x", (1, 0, 2, 3), "NaN")):
        NET_CALLS[call](small_net(), x)


@pytest.mark.parametrize("call", sorted(set(NET_CALLS) - {"check_batch"}) + ["rediscretize"])
@pytest.mark.parametrize("kind,name,index", [
    ("params", "stem_conv.weight", (0, 0, 1, 2)),
    ("params", "block2.conv1.weight", (1, 0, 0, 0, 0)),
    ("params", "dense.bias", (2,)),
    ("state", "block1.bn1.var", (1, 3)),
    ("state", "stem_bn.mean", (0,)),
])
def test_continuousnet_weights_and_statistics_are_named(call, kind, name, index):
    model = small_net()
    getattr(model, kind)[name][index] = np.inf
    expected = message(f"{kind}['{name}']", index, r"\+Inf")
    with pytest.raises(RefodeError, match=expected):
        if call == "rediscretize":
            model.rediscretize(n_basis=1)
        else:
            NET_CALLS[call](model, images())


TAGGER_CALLS = {
    "forward": lambda m: m.forward(IDS),
    "loss": lambda m: m.loss(IDS, TAGS),
    "loss_and_gradients": lambda m: m.loss_and_gradients(IDS, TAGS),
    "rediscretize": lambda m: m.rediscretize(n_basis=3),
}


@pytest.mark.parametrize("call", sorted(TAGGER_CALLS))
@pytest.mark.parametrize("name", ["embed.weight", "ode.mlp_w1", "head.bias"])
def test_tagger_weights_are_named(call, name):
    model = small_tagger()
    index = (0,) * model.params[name].ndim
    model.params[name][index] = -np.inf
    with pytest.raises(RefodeError, match=message(f"params['{name}']", index, "-Inf")):
        TAGGER_CALLS[call](model)


def test_tagger_token_ids_are_never_cast_from_floats():
    with pytest.raises(ShapeError, match="integer"):
        small_tagger().forward(np.where(IDS == 0, np.nan, IDS))


def _negative_variance(block):
    model = small_net()
    model.state[f"{block}.bn1.var"][...] = -1.0
    return model


@pytest.mark.parametrize("block", ["block2", "block1"])
def test_a_nan_the_computation_produces_is_propagated_and_counted(block):
    """A negative running variance (finite: not an input error) gives NaN logits in
    evaluation mode; they are returned, and counted as wrong by ``evaluate``."""
    model = _negative_variance(block)
    with np.errstate(invalid="ignore"):
        logits = model.forward(images())
    assert np.isnan(logits).all()
    with pytest.warns(refode.errors.RefodeWarning, match="2 of 2 predictions have non-finite"):
        accuracy = evaluate(model, images(), LABELS)
    assert accuracy == 0.0 and accuracy.nonfinite == 2


def test_cli_eval_counts_the_nan_logits_the_model_computes(tmp_path, capsys):
    model_path, data = tmp_path / "m.h5", tmp_path / "d.npz"
    refode.save(_negative_variance("block2"), model_path)
    np.savez(data, x=images(), y=LABELS)
    assert cli.main(["eval", str(model_path), "--data", str(data)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("non-finite 2")


# --------------------------------------------------------------------------------------
# files: save, load, golden, the command line
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,name", [("params", "dense.bias"), ("state", "block1.bn2.mean")])
def test_save_refuses_non_finite_weights(tmp_path, kind, name):
    model = small_net()
    getattr(model, kind)[name].flat[0] = np.nan
    with pytest.raises(RefodeError, match=rf"{kind}\['{name}'\].*non-finite"):
        refode.save(model, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def _poison_file(path, dataset, value=np.nan):
    """Write ``value`` into the first entry of ``dataset`` and drop its checksum."""
    with h5py.File(path, "r+") as f:
        data = f[dataset][...]
        data.flat[0] = value
        f[dataset][...] = data
        f[dataset].attrs.pop("sha256", None)


@pytest.fixture
def poisoned_file(tmp_path):
    path = tmp_path / "poisoned.h5"
    refode.save(small_net(), path)
    _poison_file(path, "params/block1.bn1.beta")
    return path


def test_load_refuses_a_file_with_nan(poisoned_file):
    with pytest.raises(FormatError, match=r"/params/block1\.bn1\.beta.*1 non-finite value"):
        refode.load(poisoned_file)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_golden_refuses_non_finite_inputs_and_weights(tmp_path, mode):
    out = tmp_path / "g.h5"
    x = poisoned(images(), (0, 0, 5, 5), np.nan)
    with pytest.raises(RefodeError, match=message("x", (0, 0, 5, 5), "NaN")):
        refode.io.golden.write(out, small_net(), x, LABELS, mode=mode)
    model = small_net()
    model.params["block2.conv2.weight"][0, 1, 2, 0, 1] = np.inf
    with pytest.raises(RefodeError, match=message("params['block2.conv2.weight']",
                                                  (0, 1, 2, 0, 1), r"\+Inf")):
        refode.io.golden.write(out, model, images(), LABELS, mode=mode)
    assert not out.exists()


def _one_error_line(capsys, command):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"refode {command}: error: ")
    return lines[0]


def test_cli_eval_on_data_with_nan_prints_one_line_and_exits_2(tmp_path, capsys):
    model_path = tmp_path / "m.h5"
    refode.save(small_net(), model_path)
    data = tmp_path / "d.npz"
    np.savez(data, x=poisoned(images(), (1, 0, 4, 2), np.nan), y=LABELS)
    assert cli.main(["eval", str(model_path), "--data", str(data)]) == 2
    line = _one_error_line(capsys, "eval")
    assert "--data" in line and "`x` contains 1 non-finite value(s), the first NaN at index " \
        "(1, 0, 4, 2)" in line


def test_cli_eval_of_a_weights_file_with_nan_prints_one_line_and_exits_2(
        poisoned_file, tmp_path, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, x=images(), y=LABELS)
    assert cli.main(["eval", str(poisoned_file), "--data", str(data)]) == 2
    line = _one_error_line(capsys, "eval")
    assert "/params/block1.bn1.beta" in line and "non-finite" in line
