"""Both models satisfy the model protocol of refode.models.protocol, in the same way."""
import numpy as np
import pytest

import refode
from refode.errors import RefodeError, ShapeError, TableauError
from refode.models import FAMILIES, ContinuousNet, ContinuousTagger, Model
from refode.models._spec import REQUIRED, count

from .tagger_setup import batch, tagger

#: the members every model offers.
MEMBERS = ("params", "state", "config", "network", "net", "forward", "loss",
           "loss_and_gradients", "backprop", "check_batch", "rediscretize", "to_file",
           "from_file", "from_config", "num_parameters", "ode_blocks", "shapes",
           "basis", "scheme", "n_steps", "dtype")


def _net(**options):
    kw = dict(in_channels=2, n_classes=3, widths=(3, 4), n_basis=2, n_steps=2)
    kw.update(options)
    return ContinuousNet(**kw)


def _net_batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, 2, 5, 5)), rng.integers(0, 3, 3)


CASES = {"ContinuousNet": (_net, _net_batch), "ContinuousTagger": (tagger, batch)}


@pytest.fixture(params=sorted(CASES))
def case(request):
    make, data = CASES[request.param]
    return make, data


def test_registry_names_the_classes():
    assert FAMILIES == {"ContinuousNet": ContinuousNet, "ContinuousTagger": ContinuousTagger}
    assert all(issubclass(cls, Model) for cls in FAMILIES.values())


def test_one_rediscretize():
    assert ContinuousNet.rediscretize is ContinuousTagger.rediscretize is Model.rediscretize


def test_members(case):
    model = case[0]()
    for name in MEMBERS:
        assert hasattr(model, name), name
    assert model.net is model.network
    with pytest.raises(AttributeError):
        model.net = model.network


def test_config_rebuilds_the_architecture(case):
    model = case[0]()
    cfg = model.config
    assert set(cfg) == set(type(model).FIELDS)
    assert all(isinstance(v, (int, float, str, bool, list)) for v in cfg.values())
    params, state, blocks = type(model).shapes(cfg)
    assert {k: v.shape for k, v in model.params.items()} == params
    assert {k: v.shape for k, v in model.state.items()} == state
    assert list(model.ode_blocks()) == list(blocks)
    assert model.num_parameters() == count(params)
    assert (model.num_parameters(True) + model.num_parameters(False)
            == model.num_parameters())
    again = type(model).from_config(cfg, dtype=model.dtype)
    assert again.config == cfg
    assert {k: v.shape for k, v in again.params.items()} == params


def test_from_config_refuses_unknown_keys(case):
    model = case[0]()
    with pytest.raises(RefodeError, match="unknown configuration keys"):
        type(model).from_config({**model.config, "depth": 3})


def test_required_fields_have_no_default():
    assert ContinuousTagger.FIELDS["vocab_size"].default is REQUIRED
    assert all(f.default is not REQUIRED for f in ContinuousNet.FIELDS.values())


def test_backprop_is_loss_and_gradients(case):
    make, data = case
    x, y = data()
    a, b = make(), make()
    step = a.backprop(x, y, update_state=False)
    loss, grads, logits = b.loss_and_gradients(x, y, update_state=False, return_logits=True)
    assert step.loss == loss
    assert set(step.grads) == set(a.params)
    for name, g in grads.items():
        np.testing.assert_array_equal(step.grads[name], g)
    np.testing.assert_array_equal(step.logits, logits)
    assert step.input_gradient.shape[:2] == np.shape(x)[:2]
    assert set(step.state) == set(a.state)
    for name, v in a.state.items():   # unchanged
        np.testing.assert_array_equal(v, b.state[name])
    assert a.loss(x, y) == pytest.approx(loss, rel=1e-12)
    assert a.backprop(x, y, train=False).state is None


def test_update_state_false_keeps_the_state():
    model, (x, y) = _net(), _net_batch()
    before = {k: v.copy() for k, v in model.state.items()}
    step = model.backprop(x, y, update_state=False)
    for k, v in model.state.items():
        np.testing.assert_array_equal(v, before[k])
    model.loss_and_gradients(x, y)
    changed = [k for k, v in model.state.items() if not np.array_equal(v, before[k])]
    assert changed
    for k in changed:
        np.testing.assert_array_equal(model.state[k], step.state[k])


def test_basis_object_or_name(case):
    make = case[0]
    by_name = make(basis="fem_linear", n_basis=3)
    by_basis = make(basis=refode.basis("fem_linear", 3), n_basis=None)
    assert by_basis.config == by_name.config
    with pytest.raises(RefodeError, match="n_basis"):
        make(basis=refode.basis("fem_linear", 3), n_basis=4)
    moved = by_name.rediscretize(basis=refode.basis("piecewise_constant", 2))
    assert moved.basis.family == "piecewise_constant" and moved.basis.n == 2
    with pytest.raises(RefodeError, match="n_basis"):
        by_name.rediscretize(basis=refode.basis("piecewise_constant", 2), n_basis=3)


def test_same_errors_for_the_same_mistakes(case):
    make = case[0]
    with pytest.raises(ShapeError, match="dtype"):
        make(dtype=np.int32)
    with pytest.raises(TableauError):
        make(scheme="rk5")
    model = make()
    with pytest.raises(TableauError):
        model.rediscretize(scheme="rk5")
    with pytest.raises(RefodeError, match="`change`"):
        model.rediscretize(change="nearest")
    with pytest.raises(RefodeError, match="`method`"):
        model.rediscretize(method="nearest")
    with pytest.raises(RefodeError, match="disagree"):
        model.rediscretize(method="projection", change="interpolation")
    with pytest.raises(RefodeError, match="stats"):
        model.rediscretize(stats="clip")


def test_change_and_method_agree(case):
    make, data = case
    model = make(basis="fem_linear", n_basis=3)
    x, _ = data()
    a = model.rediscretize(n_basis=2, change="interpolation")
    b = model.rediscretize(n_basis=2, method="interpolation")
    c = model.rediscretize(n_basis=2)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_rediscretize_leaves_the_model_alone(case):
    make, data = case
    model = make(basis="piecewise_constant", n_basis=2)
    before = {k: v.copy() for k, v in model.params.items()}
    new = model.rediscretize(n_basis=4, n_steps=4, scheme="rk4")
    assert (model.basis.n, model.n_steps, model.scheme) == (2, 2, "euler")
    assert (new.basis.n, new.n_steps, new.scheme) == (4, 4, "rk4")
    assert all(b.basis is new.basis and b.n_steps == 4 for b in new.ode_blocks().values())
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
        assert v is not new.params[k]


def test_files(case, tmp_path):
    make, data = case
    model = make()
    model.to_file(tmp_path / "m.h5")
    again = type(model).from_file(tmp_path / "m.h5")
    assert type(again) is type(model) and again.config == model.config
    for name, v in model.params.items():
        np.testing.assert_array_equal(again.params[name], v)
    assert type(Model.from_file(tmp_path / "m.h5")) is type(model)
    other = ContinuousTagger if isinstance(model, ContinuousNet) else ContinuousNet
    with pytest.raises(RefodeError, match="refode.load"):
        other.from_file(tmp_path / "m.h5")


def test_recalibrate_needs_running_statistics():
    ids, _ = batch()
    with pytest.raises(RefodeError, match="no running statistics"):
        tagger().rediscretize(stats="recalibrate", data=ids)


def test_net_blocks_live_on_the_unit_interval():
    with pytest.raises(RefodeError, match=r"\[0.0, 1.0\]"):
        _net(basis=refode.basis("piecewise_constant", 2, (0.0, 2.0)), n_basis=None)
