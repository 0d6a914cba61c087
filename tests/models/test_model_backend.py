"""Both models hold a Backend, every layer runs its kernels, and the backends agree.

``"reference"`` (NumPy) and ``"cpu"`` (Numba) compute the same formulas with other
roundings: they agree to round-off (float64), not bitwise. ``"cuda"`` runs the whole
model with host arrays (copied on every kernel call); here in Numba's simulator, which
``tests/conftest.py`` selects unless ``NUMBA_ENABLE_CUDASIM=0``.
"""
import numpy as np
import pytest

from refode import backend as backends
from refode.errors import RefodeError
from refode.models import ContinuousNet, ContinuousTagger

from .tagger_setup import batch as tagger_batch, tagger

#: float64 agreement of two backends (relative to each array's largest entry).
RTOL = 1e-12
#: fraction of the largest entry below which an array is compared at that scale: the
#: weight gradient of a conv feeding a training-mode batch norm vanishes up to the norm's
#: eps (a one-channel shortcut's: 1e-4 of the largest gradient, a sum of terms that
#: cancel), so its round-off is that of the largest entries, not of its own size.
FLOOR = 1e-2
#: the smallest models that still have every layer kind (stitch shortcut, padding, bias).
NET = dict(in_channels=2, n_classes=3, widths=(2, 3), basis="fem_linear", n_basis=2,
           scheme="midpoint", n_steps=2, padding="same", head_activation="relu")
TAGGER = dict(width=4, heads=2, ffn=3, n_basis=2, scheme="midpoint", n_steps=2,
              attention_bias=True)
#: a ContinuousNet small enough for the CUDA simulator.
SIM_NET = dict(in_channels=1, n_classes=2, widths=(2,), n_basis=1, n_steps=1)


def _net_batch(channels=2, size=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, channels, size, size)), np.array([0, 2, 1]) % 2


def _holders(model):
    """Every object of the model that runs kernels: leaf layers, blocks and rates."""
    out, todo = [], list(model.network.layers.values())
    while todo:
        layer = todo.pop()
        todo += list(getattr(layer, "layers", {}).values()) + list(
            getattr(layer, "parts", {}).values())
        for obj in (layer, getattr(layer, "rate", None)):
            if obj is not None and hasattr(obj, "backend"):
                out.append(obj)
    return out


def _close(got, want, what):
    """Every array within RTOL of its largest entry, or of FLOOR times the largest entry
    of all (arrays that vanish identically or nearly, e.g. a shift or a conv weight
    before a training-mode batch norm, are round-off noise of about 1e-16 times the
    largest gradient)."""
    floor = FLOOR * max(float(np.abs(v).max()) for v in want.values())
    for name in want:
        a, b = np.asarray(got[name]), np.asarray(want[name])
        scale = max(float(np.abs(b).max()), floor, 1e-300)
        assert np.abs(a - b).max() <= RTOL * scale, (what, name)


def _agree(model, other, x, y, train):
    """Loss, gradients, logits, input gradient and state after the step agree."""
    a = model.backprop(x, y, train=train, update_state=False)
    b = other.backprop(x, y, train=train, update_state=False)
    assert a.loss == pytest.approx(b.loss, rel=RTOL)
    _close(b.grads, a.grads, "grads")
    _close({"logits": b.logits, "input": b.input_gradient},
           {"logits": a.logits, "input": a.input_gradient}, "outputs")
    if train and model.STATEFUL:
        _close(b.state, a.state, "state")


@pytest.mark.parametrize("make", [lambda **kw: ContinuousNet(**{**NET, **kw}),
                                  lambda **kw: tagger(**{**TAGGER, **kw})])
def test_models_hold_one_backend_that_every_layer_runs(make):
    model = make()
    assert isinstance(model.backend, backends.Backend) and model.backend.name == "cpu"
    ref = backends.get("reference")
    other = make(backend=ref)
    assert other.backend is ref
    holders = _holders(other)
    assert len(holders) >= 4
    assert all(obj.backend is ref for obj in holders), [type(o).__name__ for o in holders]
    assert "backend" not in other.config          # an option, not architecture
    again = type(other).from_config(other.config, dtype=other.dtype, backend="reference")
    assert again.backend == ref and again.config == other.config
    assert type(other).from_config(other.config, dtype=other.dtype).backend.name == "cpu"


def test_rediscretized_models_keep_their_backend():
    net = ContinuousNet(**NET, backend="reference")
    new = net.rediscretize(n_basis=4, change="interpolation")
    assert new.backend == net.backend
    assert all(obj.backend == net.backend for obj in _holders(new))


@pytest.mark.parametrize("make", [ContinuousNet, lambda **kw: ContinuousTagger(4, 3, **kw)])
def test_unknown_backend_is_a_one_line_error(make):
    with pytest.raises(RefodeError) as info:
        make(backend="gpu")
    message = str(info.value)
    assert "\n" not in message
    assert message == "unknown backend 'gpu'; choose one of reference, cpu, cuda"


@pytest.mark.parametrize("make", [ContinuousNet, lambda **kw: ContinuousTagger(4, 3, **kw)])
def test_unusable_cuda_is_a_one_line_error(make, monkeypatch):
    monkeypatch.setattr(backends, "_cuda_problem", lambda: "no CUDA GPU is available; use "
                        "backend='cpu'")
    with pytest.raises(RefodeError, match="^no CUDA GPU is available; use backend='cpu'$"):
        make(backend="cuda")


@pytest.mark.parametrize("train", [True, False])
def test_reference_and_cpu_agree_on_continuousnet(train):
    x, y = _net_batch()
    cpu = ContinuousNet(**NET, seed=3)
    cpu.loss_and_gradients(x, y)                  # running statistics off their init
    ref = ContinuousNet(**NET, seed=3, backend="reference")
    for name, value in {**cpu.params, **cpu.state}.items():
        {**ref.params, **ref.state}[name][...] = value
    _agree(cpu, ref, x, y, train)


@pytest.mark.parametrize("train", [True, False])
def test_reference_and_cpu_agree_on_the_tagger(train):
    ids, tags = tagger_batch()
    _agree(tagger(**TAGGER), tagger(**TAGGER, backend="reference"), ids, tags, train)


def test_cuda_backend_runs_both_models():
    pytest.importorskip("numba.cuda")
    if not backends.Backend("cuda").available():
        pytest.skip("no GPU and not in the CUDA simulator")
    x, y = _net_batch(channels=1, size=3)
    _agree(ContinuousNet(**SIM_NET), ContinuousNet(**SIM_NET, backend="cuda"), x, y, True)
    small = dict(width=2, heads=1, ffn=2, n_basis=1, n_steps=1)
    ids, tags = tagger_batch()
    _agree(tagger(**small), tagger(**small, backend="cuda"), ids[:1, :3], tags[:1, :3], True)
