"""Running variances <= -eps at a stage: found as evaluation computes them, reported."""
import numpy as np
import pytest

import refode
from refode.io.variances import describe_nonpositive, nonpositive_stages
from refode.models import ContinuousNet


@pytest.mark.parametrize("family, k", [("fem_linear", 3), ("legendre", 3), ("fourier", 3),
                                       ("piecewise_linear", 4), ("piecewise_constant", 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_agrees_with_the_blocks_own_stage_by_stage_check(family, k, dtype, rng):
    for scheme in ("euler", "rk4", "midpoint"):
        net = ContinuousNet(in_channels=1, n_classes=2, widths=(3, 2), basis=family,
                            n_basis=k, scheme=scheme, n_steps=5, dtype=dtype)
        expected = []
        for name, block in net.network.layers.items():
            if hasattr(block, "nonpositive_variances"):
                for var in ("bn1.var", "bn2.var"):
                    block.state[var][...] = 0.5 * rng.standard_normal(block.state[var].shape)
                expected += [(name, v, p, c) for v, p, c in block.nonpositive_variances()]
        found = [(b, v, p, c) for b, v, _, _, p, c in nonpositive_stages(net)]
        assert sorted(found) == sorted(expected) and found, (family, scheme)


def test_the_message_names_block_array_step_and_stage():
    net = ContinuousNet(in_channels=1, n_classes=2, widths=(2,), basis="piecewise_constant",
                        n_basis=4, scheme="heun", n_steps=4)
    net.network.layers["block1"].state["bn2.var"][2, 1] = -1.0
    found = nonpositive_stages(net)
    assert [(b, v, n, i, c) for b, v, n, i, _, c in found] == [
        ("block1", "bn2.var", 2, 0, 1), ("block1", "bn2.var", 2, 1, 1)]
    text = describe_nonpositive(found, "f.h5")
    assert text.startswith("f.h5: running variance + eps <= 0 at 2 stage(s): block1.bn2.var "
                           "at step 2 stage 0 (t = 0.5, 1 channel(s))")
    assert nonpositive_stages(refode.models.ContinuousTagger(5, 2, width=4, ffn=4,
                                                             n_basis=1)) == []
