"""Shared setup of the ContinuousNet tests: tiny configurations, seeded images, and the
``convnet_env`` fixture (Numba compilation paid once, one Numba thread per test).

Test modules import the fixtures (``from .convnet_setup import ...``) and use them with
``pytestmark = pytest.mark.usefixtures("convnet_env")``; nothing here is autouse, so
other test modules of the directory are not affected.
"""
import numba
import numpy as np
import pytest

from refode.models import ContinuousNet

#: a tiny configuration used by most model tests.
TINY = {"in_channels": 3, "n_classes": 5, "widths": (3, 4)}
#: batch, channels and size of the test images.
IMAGES = (3, 3, 6, 6)
#: arrays whose gradient norm is below this fraction of the largest one are compared
#: absolutely at that scale (gradients that vanish identically, e.g. a shift followed
#: by a training-mode batch norm, are round-off noise of about 1e-16 times the largest
#: gradient, so relative 1e-10 at this floor still asks for round-off).
FLOOR = 1e-5


def relative_errors(got, want, floor=FLOOR):
    """``{name: |got - want| / max(|want|, floor * max_name |want|)}`` (Frobenius norms)."""
    scale = floor * max(np.linalg.norm(v) for v in want.values())
    return {k: np.linalg.norm(got[k] - want[k]) / max(np.linalg.norm(want[k]), scale)
            for k in want}


def tiny(**kw):
    """A tiny :class:`ContinuousNet` (``TINY`` updated with ``kw``)."""
    return ContinuousNet(**{**TINY, **kw})


def batch(seed=0, n_classes=TINY["n_classes"]):
    """Seeded images ``IMAGES`` and labels."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(IMAGES), rng.integers(0, n_classes, IMAGES[0])


@pytest.fixture(scope="session")
def convnet_compiled():
    """Compile every kernel the model uses (float64), training and evaluation."""
    model = tiny(n_basis=2, n_steps=2)
    x, y = batch()
    model.loss_and_gradients(x, y)
    model.loss_and_gradients(x, y, train=False)
    return model


@pytest.fixture
def convnet_env(convnet_compiled):
    """Compiled kernels and one Numba thread for the test (restored afterwards).

    Results are bitwise the same for any thread count (which
    ``test_bitwise_identical_with_one_and_two_threads`` checks); one thread keeps the
    tests fast on a busy two-core machine, where a parallel region can wait
    milliseconds for the second core.
    """
    saved = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(saved)
