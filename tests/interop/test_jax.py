"""refode.interop.jax: trees of validation/jax_impl and their round trip."""
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import refode  # noqa: E402
from refode.errors import RefodeError  # noqa: E402
from refode.interop import jax as rj  # noqa: E402
from refode.models import ContinuousNet  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _net():
    return ContinuousNet(in_channels=1, n_classes=2, widths=(2, 3), basis="legendre",
                         n_basis=2, scheme="euler", n_steps=1, seed=5)


def test_nest_and_flatten_are_inverse():
    arrays = {"block1.conv1.weight": np.ones(2), "stem_bn.gamma": np.zeros(1),
              "ode.ln1_gamma": np.arange(3.0)}
    tree = rj.nest(arrays)
    assert tree["block1"]["conv1"]["weight"] is arrays["block1.conv1.weight"]
    back = rj.flatten(tree)
    assert back.keys() == arrays.keys()


def test_round_trip_through_file(tmp_path):
    model = _net()
    refode.save(model, tmp_path / "m.h5")
    jax.config.update("jax_enable_x64", True)
    params, state = rj.trees(tmp_path / "m.h5")
    assert params["block1"]["conv1"]["weight"].shape == model.params["block1.conv1.weight"].shape
    assert state["block2"]["bn1"]["var"].dtype == np.float64
    family, cfg, _ = rj.config(model)
    back = rj.to_refode(params, state, family, cfg)
    for k, v in model.params.items():
        assert np.array_equal(v, back.params[k]), k


def test_float64_without_x64_is_refused():
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RefodeError, match="jax_enable_x64"):
            rj.trees(_net())
        params, _ = rj.trees(_net(), dtype="float32")
        assert params["dense"]["weight"].dtype == np.float32
    finally:
        jax.config.update("jax_enable_x64", True)
