"""Golden files written on demand for the configurations this project cares about."""
import pytest

from refode.testing import GoldenCase

CONFIGS = {
    "seven_pieces": {"in_channels": 1, "n_classes": 2, "widths": [2],
                     "basis": "piecewise_constant", "n_basis": 7, "scheme": "euler",
                     "n_steps": 7},
    "rk4_two_pieces_same": {"in_channels": 2, "n_classes": 2, "widths": [2, 2],
                            "basis": "piecewise_constant", "n_basis": 2, "scheme": "rk4",
                            "n_steps": 2, "padding": "same", "stitch_scale": 0.5},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config(name, refode_golden_factory, refode_implementation):
    path = refode_golden_factory(CONFIGS[name], mode="train", seed=1, batch=2)
    GoldenCase(path).check(refode_implementation)
