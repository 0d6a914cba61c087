"""Whole-tagger gradients: finite differences and an independent PyTorch implementation."""
import numpy as np
import pytest
import torch

from .tagger_setup import PAD, batch, tagger, warm
from .torch_tagger import TorchTagger

#: central finite-difference step and relative tolerance (float64).
FD_STEP, FD_RTOL = 1e-6, 1e-6
#: agreement with PyTorch: logits and gradients (relative, float64).
LOGITS_RTOL, GRAD_RTOL = 1e-12, 1e-10
BASES = {"piecewise_constant": 2, "fem_linear": 3, "legendre": 2}
SCHEMES = {"euler": 3, "midpoint": 2, "rk4": 2}


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warm()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("family", sorted(BASES))
@pytest.mark.parametrize("ln_eps", [1e-5, 0.3])
def test_every_gradient_matches_finite_differences(family, scheme, ln_eps):
    """A random direction per named array, padding in the batch; two layer-norm eps."""
    model = tagger(basis=family, n_basis=BASES[family], scheme=scheme, n_steps=SCHEMES[scheme],
                   heads=2, ln_eps=ln_eps)
    ids, targets = batch(seed=1)
    _, grads = model.loss_and_gradients(ids, targets)
    rng = np.random.default_rng(7)
    params = model.params
    assert set(grads) == set(params)
    for name, array in params.items():
        assert grads[name].shape == array.shape
        direction = rng.standard_normal(array.shape)
        if name == "embed.weight":
            direction[PAD] = 0.0  # padding rows are inert: checked separately
        original = array.copy()
        losses = []
        for eps in (FD_STEP, -FD_STEP):
            array[...] = original + eps * direction
            losses.append(model.loss(ids, targets))
        array[...] = original
        fd = (losses[0] - losses[1]) / (2 * FD_STEP)
        exact = float(np.sum(grads[name] * direction))
        assert abs(fd - exact) <= FD_RTOL * max(abs(exact), 1e-4), (name, fd, exact)
    assert np.all(grads["embed.weight"][PAD] == 0)


TORCH_CASES = [
    dict(rate="paper", heads=1, basis="piecewise_constant", n_basis=3, scheme="euler", n_steps=3),
    dict(rate="paper", heads=2, basis="fem_linear", n_basis=3, scheme="midpoint", n_steps=2),
    dict(rate="paper", heads=1, basis="legendre", n_basis=2, scheme="rk4", n_steps=2),
    dict(rate="pre_ln", heads=2, basis="piecewise_constant", n_basis=4, scheme="rk4", n_steps=3,
         attention_bias=True),
    dict(rate="paper", heads=2, basis="piecewise_linear", n_basis=4, scheme="rk4", n_steps=3,
         ln_eps=1e-6),
    dict(rate="pre_ln", heads=1, basis="fem_linear", n_basis=3, scheme="euler", n_steps=4,
         ln_eps=0.5),
]


def _torch_twin(model, options):
    return TorchTagger(model.params, model.basis, options["scheme"], options["n_steps"],
                       options["heads"], PAD, options["rate"], options.get("ln_eps", 1e-5))


@pytest.mark.parametrize("options", TORCH_CASES, ids=lambda o: f"{o['rate']}-{o['basis']}-"
                         f"{o['scheme']}-h{o['heads']}-eps{o.get('ln_eps', 1e-5):g}")
def test_pytorch_implementation_agrees(options):
    model = tagger(seed=2, **options)
    ids, targets = batch(seed=3)
    twin = _torch_twin(model, options)
    with torch.no_grad():
        expected = twin(torch.from_numpy(ids)).numpy()
    for train in (False, True):
        logits = model.forward(ids, train=train)
        np.testing.assert_allclose(logits, expected, rtol=LOGITS_RTOL,
                                   atol=LOGITS_RTOL * np.abs(expected).max())
    loss, grads = model.loss_and_gradients(ids, targets)
    torch_loss, torch_grads = twin.loss_and_gradients(torch.from_numpy(ids),
                                                      torch.from_numpy(targets))
    assert abs(loss - torch_loss) <= LOGITS_RTOL * abs(torch_loss)
    assert set(grads) == set(torch_grads)
    for name, g in torch_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=GRAD_RTOL,
                                   atol=GRAD_RTOL * np.abs(g).max(), err_msg=name)
