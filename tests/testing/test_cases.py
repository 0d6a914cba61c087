"""refode.testing.cases: golden cases as plain data, golden files for configurations."""
import h5py
import numpy as np
import pytest

import refode
from refode.errors import RefodeError
from refode.models import ContinuousNet, ContinuousTagger
from refode.testing import (GoldenCase, build_model, expected_state, family_of,
                            write_golden)


def test_case_holds_the_files_data(net_golden):
    case = GoldenCase(net_golden)
    with h5py.File(net_golden, "r") as fh:
        np.testing.assert_array_equal(case.x, fh["inputs/x"][()])
        np.testing.assert_array_equal(case.y, fh["inputs/y"][()])
        assert set(case.params) == set(fh["model/params"])
        assert set(case.state) == set(fh["model/state"])
        np.testing.assert_array_equal(case.params["block1.conv1.weight"],
                                      fh["model/params/block1.conv1.weight"][()])
        assert case.rtol == fh.attrs["rtol"] and case.mode == "train"
    assert case.family == "ContinuousNet" and case.dtype == np.float64
    assert case.config["n_basis"] == 2 and case.config["head_activation"] == "none"
    assert "net_pc2_rk4_n2_f64_train" in repr(case)


def test_family_and_build_model():
    assert family_of({"vocab_size": 3}) == "ContinuousTagger"
    assert family_of({"widths": [2]}) == "ContinuousNet"
    with pytest.raises(RefodeError, match="model"):
        family_of({"model": "ResNet"})
    with pytest.raises(RefodeError, match="config"):
        build_model([1, 2])
    net = build_model({"in_channels": 1, "n_classes": 2, "widths": [2], "n_basis": 2,
                       "n_steps": 1, "padding": "same"}, dtype="float32")
    assert isinstance(net, ContinuousNet) and net.dtype == np.float32 and net.padding == "same"
    tagger = build_model({"model": "ContinuousTagger", "vocab_size": 4, "n_tags": 2,
                          "width": 2, "heads": 1, "ffn": 2, "basis": "legendre",
                          "n_basis": 2, "interval": [0.5, 2.0]})
    assert isinstance(tagger, ContinuousTagger) and tagger.basis.interval == (0.5, 2.0)


def test_write_golden_and_expected_state(tmp_path):
    cfg = {"in_channels": 1, "n_classes": 2, "widths": [2], "basis": "piecewise_constant",
           "n_basis": 2, "scheme": "euler", "n_steps": 2}
    path = write_golden(tmp_path / "g.h5", cfg, mode="train", seed=3, batch=2)
    case = GoldenCase(path)
    assert case.x.shape == (2, 1, 8, 8) and case.mode == "train"
    case.check(case.expected)
    model = refode.load(path)
    after = expected_state(model, case.x, "train")
    assert set(after) == {f"outputs/state/{k}" for k in model.state}
    name = "outputs/state/block1.bn1.mean"
    assert not np.array_equal(after[name], model.state["block1.bn1.mean"])
    np.testing.assert_array_equal(model.state["block1.bn1.mean"], case.state["block1.bn1.mean"])
    for key, value in after.items():  # the file's statistics, when it stores them
        if key in case.expected:
            np.testing.assert_allclose(value, case.expected[key], rtol=1e-12, atol=1e-15)
    # eval: the stored statistics, unchanged
    unchanged = expected_state(model, case.x, "eval")
    np.testing.assert_array_equal(unchanged["outputs/state/stem_bn.var"], case.state["stem_bn.var"])
    case.check(lambda c: dict(c.expected, **c.expected_state()))
    with pytest.raises(AssertionError, match="outputs/state/block1.bn1.mean"):
        case.check(dict(case.expected, **unchanged))


def test_state_of_a_file_without_statistics_is_recomputed(tmp_path):
    """An eval-mode file stores no statistics: refode's (unchanged) ones are the reference."""
    cfg = {"in_channels": 1, "n_classes": 2, "widths": [1], "n_basis": 1, "n_steps": 1}
    case = GoldenCase(write_golden(tmp_path / "e.h5", cfg, mode="eval", batch=2))
    assert not any(k.startswith("outputs/state/") for k in case.expected)
    same = {f"outputs/state/{k}": v for k, v in case.state.items()}
    case.check(dict(case.expected, **same))
    wrong = dict(same, **{"outputs/state/stem_bn.var": same["outputs/state/stem_bn.var"] + 1})
    with pytest.raises(AssertionError, match="running statistics after the step"):
        case.check(dict(case.expected, **wrong))
