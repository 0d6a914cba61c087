"""The one set of size caps: messages name the argument, the cap and the fix."""
import pytest

import refode
from refode import limits
from refode.errors import BasisError, RefodeError


@pytest.mark.parametrize("check, cap, what", [
    (limits.n_basis, limits.MAX_N_BASIS, "basis functions"),
    (limits.n_steps, limits.MAX_N_STEPS, "integration steps"),
    (limits.batch, limits.MAX_BATCH, "samples"),
])
def test_caps_accept_up_to_the_cap_and_refuse_beyond(check, cap, what):
    assert check(cap) == cap and check(1) == 1
    with pytest.raises(RefodeError, match=rf"`k` is {cap + 1:,}, more {what} than refode's "
                       rf"cap of {cap:,}; use at most {cap:,}"):
        check(cap + 1, "k")
    with pytest.raises(RefodeError, match="`k` must be an integer >= 1"):
        check(0, "k")


def test_basis_sizes_are_basis_errors_and_the_io_caps_are_the_same_constants():
    with pytest.raises(BasisError):
        limits.n_basis(limits.MAX_N_BASIS + 1)
    assert (refode.io.MAX_N_BASIS, refode.io.MAX_N_STEPS, refode.io.MAX_SCALARS,
            refode.io.MAX_STAGES) == (limits.MAX_N_BASIS, limits.MAX_N_STEPS,
                                      limits.MAX_SCALARS, limits.MAX_STAGES)


def test_models_refuse_sizes_beyond_the_caps_before_allocating():
    from refode.models import ContinuousNet, ContinuousTagger

    with pytest.raises(RefodeError, match=r"ContinuousNet would hold 3.06e\+12 scalars"):
        ContinuousNet(widths=(100_000,))
    with pytest.raises(RefodeError, match=r"`widths` must hold 1 to 64 widths"):
        ContinuousNet(widths=(2,) * 65)
    with pytest.raises(RefodeError, match="ContinuousTagger would hold"):
        ContinuousTagger(vocab_size=10**9, n_tags=3, width=8, ffn=8, n_basis=2)
    net = ContinuousNet(in_channels=1, n_classes=2, widths=(64, 64), n_basis=2, n_steps=2)
    with pytest.raises(RefodeError, match="would hold"):
        net.rediscretize(n_basis=4096)
    with pytest.raises(RefodeError, match="`n_steps` is 100,001"):
        net.rediscretize(n_steps=100_001)


def test_a_change_of_basis_may_not_grow_past_the_cap():
    import numpy as np

    with pytest.raises(RefodeError, match=r"onto 4096 functions would hold 4.1e\+09"):
        refode.project(np.ones((1, 10**6)), ("piecewise_constant", 1),
                       ("piecewise_constant", 4096))
