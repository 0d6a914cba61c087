"""Both models on ``backend="cuda"``, arrays resident on the device between layers.

Forward, loss, gradients (``backprop``) and the running statistics after a training
step agree with the CPU backend within 1e-12 relative in float64
(``test_model_backend._agree``). Under :func:`strict_device_arrays` any NumPy
expression on a device array fails, so passing shows that the activations, stages and
cotangents stay on the device; the transfer tests show that the host <-> device copies
of one call do not grow with ``n_steps``. Here in Numba's simulator (tiny shapes).
"""
import numpy as np
import pytest

from refode.models import ContinuousNet

from ..integrate.cuda_checks import strict_device_arrays, transfers  # noqa: F401
from .tagger_setup import batch as tagger_batch, tagger
from .test_model_backend import RTOL, SIM_NET, _agree, _close, _net_batch

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("strict_device_arrays")]

#: a tagger small enough for the simulator, with padding (the mask) and two heads.
SIM_TAGGER = dict(width=2, heads=2, ffn=2, n_basis=1, n_steps=1, attention_bias=True)
#: a ContinuousNet with a stride-2 'same'-padded stitch (explicit asymmetric padding).
SIM_NET_SAME = dict(in_channels=1, n_classes=2, widths=(1, 1), n_basis=1, n_steps=1,
                    padding="same", head_activation="relu", scheme="euler")


def _pair(make, **kw):
    return make(**kw), make(**kw, backend="cuda")


def _tagger_batch():
    ids, tags = tagger_batch()
    rows = (0, slice(2, 4)), (2, slice(0, 2))   # [5, PAD] and [7, PAD]: padding in both
    return np.stack([ids[r] for r in rows]), np.stack([tags[r] for r in rows])


@pytest.mark.parametrize("train", [True, False])
def test_continuousnet_on_cuda_matches_cpu(train):
    x, y = _net_batch(channels=1, size=2)
    cpu, gpu = _pair(ContinuousNet, **SIM_NET, seed=1)
    cpu.loss_and_gradients(x, y)   # running statistics off their init (same seed: same params)
    for name, value in cpu.state.items():
        gpu.state[name][...] = value
    _agree(cpu, gpu, x, y, train)


def test_continuousnet_same_padding_and_stitch_shortcut_on_cuda():
    x, y = _net_batch(channels=1, size=2, seed=2)
    _agree(*_pair(ContinuousNet, **SIM_NET_SAME, seed=2), x, y, True)


def test_continuousnet_forward_loss_and_training_step_on_cuda():
    x, y = _net_batch(channels=1, size=2, seed=3)
    cpu, gpu = _pair(ContinuousNet, **SIM_NET, seed=3)
    logits = gpu.forward(x, train=False)
    assert type(logits) is np.ndarray
    _close({"logits": logits}, {"logits": cpu.forward(x, train=False)}, "forward")
    assert gpu.loss(x, y) == pytest.approx(cpu.loss(x, y), rel=RTOL)
    a, b = cpu.loss_and_gradients(x, y), gpu.loss_and_gradients(x, y)   # updates the state
    assert b[0] == pytest.approx(a[0], rel=RTOL)
    _close(b[1], a[1], "grads")
    assert all(type(v) is np.ndarray for v in {**gpu.state, **b[1]}.values())
    _close(gpu.state, cpu.state, "state after the step")
    assert any(not np.array_equal(v, w) for v, w in
               zip(gpu.state.values(), ContinuousNet(**SIM_NET, seed=3).state.values()))


@pytest.mark.parametrize("train", [True, False])
def test_tagger_on_cuda_matches_cpu(train):
    ids, tags = _tagger_batch()
    _agree(*_pair(tagger, **SIM_TAGGER), ids, tags, train)


def test_pre_ln_tagger_forward_and_loss_on_cuda():
    ids, tags = _tagger_batch()
    cpu, gpu = _pair(tagger, **{**SIM_TAGGER, "rate": "pre_ln", "scheme": "midpoint"})
    _close({"logits": gpu.forward(ids)}, {"logits": cpu.forward(ids)}, "forward")
    assert gpu.loss(ids, tags) == pytest.approx(cpu.loss(ids, tags), rel=RTOL)


def _model_transfers(make, n_steps, x, y, monkeypatch):
    model = make(n_steps)
    with transfers(monkeypatch) as count:
        model.backprop(x, y)
    return dict(count)


def test_continuousnet_transfers_do_not_grow_with_n_steps(monkeypatch):
    x, y = _net_batch(channels=1, size=2, seed=4)

    def make(n):
        return ContinuousNet(**{**SIM_NET, "n_steps": n}, backend="cuda")

    one, two = (_model_transfers(make, n, x, y, monkeypatch) for n in (1, 2))
    assert one == two, (one, two)


def test_tagger_transfers_do_not_grow_with_n_steps(monkeypatch):
    ids, tags = _tagger_batch()

    def make(n):
        return tagger(**{**SIM_TAGGER, "heads": 1, "n_steps": n}, backend="cuda")

    one, two = (_model_transfers(make, n, ids, tags, monkeypatch) for n in (1, 2))
    assert one == two, (one, two)
