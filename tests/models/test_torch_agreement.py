"""refode's ContinuousNet against an independent PyTorch implementation (float64):
logits, loss, every gradient and the running statistics after a training step, then
evaluation mode with those statistics."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from .convnet_setup import (  # noqa: F401
    TINY, batch, convnet_compiled, convnet_env, relative_errors, tiny)

pytestmark = pytest.mark.usefixtures("convnet_env")
from .torch_continuousnet import TorchContinuousNet

#: tolerances of the issue: logits absolute (they are O(1)), gradients relative.
LOGIT_TOL, GRAD_RTOL = 1e-12, 1e-10
#: running statistics after one step (O(1) values; sums in different orders).
STATE_TOL = 1e-13
#: (family, K, scheme, N): N < K, N not a multiple of K, stages on breakpoints.
CASES = [("piecewise_constant", 3, "euler", 3), ("piecewise_constant", 3, "rk4", 2),
         ("fem_linear", 3, "midpoint", 4), ("legendre", 2, "rk4", 3),
         ("piecewise_constant", 4, "midpoint", 3), ("piecewise_constant", 4, "euler", 3)]


def _torch_step(net, x, y, train):
    net.train(train)
    for p in net.parameters():
        p.grad = None
    logits = net(torch.from_numpy(x))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    tensors = net.tensors()
    return logits.detach().numpy(), loss.item(), tensors


def _compare(model, net, x, y, train):
    logits_t, loss_t, tensors = _torch_step(net, x, y, train)
    np.testing.assert_allclose(model.forward(x, train, update_state=False), logits_t,
                               rtol=0, atol=LOGIT_TOL)
    loss, grads = model.loss_and_gradients(x, y, train=train)
    assert abs(loss - loss_t) < LOGIT_TOL
    want = {k: tensors[k].grad.numpy() for k in grads}
    errors = relative_errors(grads, want)
    assert max(errors.values()) < GRAD_RTOL, max(errors.items(), key=lambda e: e[1])
    for name, value in model.state.items():
        np.testing.assert_allclose(value, tensors[name].detach().numpy(), rtol=0,
                                   atol=STATE_TOL, err_msg=name)


#: the architecture options (defaults first: no head activation, symmetric padding).
OPTIONS = [{}, {"head_activation": "relu"},
           {"padding": "same", "rate_scale": 0.7, "stitch_scale": 0.25},
           {"padding": "same", "head_activation": "relu", "rate_scale": 1.5}]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())) or "default")
@pytest.mark.parametrize("family,k,scheme,n", CASES)
def test_matches_pytorch(family, k, scheme, n, options):
    model = tiny(basis=family, n_basis=k, scheme=scheme, n_steps=n, seed=7, **options)
    net = TorchContinuousNet(model, TINY["in_channels"], TINY["n_classes"], TINY["widths"])
    for seed in (0, 1):  # two training steps: the second starts from fitted statistics
        x, y = batch(seed)
        _compare(model, net, x, y, train=True)
    x, y = batch(2)
    _compare(model, net, x, y, train=False)
    assert not np.allclose(model.state["block1.bn1.mean"], 0.0)
