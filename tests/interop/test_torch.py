"""refode.interop.torch: names, round trips through validation/torch_impl's modules."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import refode  # noqa: E402
from refode.errors import RefodeError, ShapeError  # noqa: E402
from refode.interop import torch as rt  # noqa: E402
from refode.models import ContinuousNet, ContinuousTagger  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from validation.torch_impl.continuousnet import TorchContinuousNet  # noqa: E402
from validation.torch_impl.tagger import TorchTagger  # noqa: E402


def _net(dtype=np.float64):
    return ContinuousNet(in_channels=1, n_classes=2, widths=(2, 3), basis="fem_linear",
                         n_basis=3, scheme="midpoint", n_steps=2, seed=3, dtype=dtype,
                         padding="same", head_activation="relu")


def _tagger():
    return ContinuousTagger(vocab_size=7, n_tags=3, width=4, heads=2, ffn=3,
                            basis=refode.basis("legendre", 2, (0.0, 2.0)), scheme="rk4",
                            n_steps=2, seed=1, attention_bias=True, ln_eps=1e-6)


@pytest.mark.parametrize("name,key", [
    ("stem_bn.gamma", "stem_bn.weight"), ("block1.bn2.var", "block1.bn2.running_var"),
    ("stitch2.shortcut.bn.mean", "stitch2.shortcut.bn.running_mean"),
    ("block1.conv1.weight", "block1.conv1.weight"), ("norm.beta", "norm.bias"),
    ("ode.ln1_gamma", "ode.ln1_gamma"), ("dense.bias", "dense.bias")])
def test_name_table(name, key):
    assert rt.torch_key(name) == key
    assert rt.refode_name(key) == name


@pytest.mark.parametrize("make,cls", [(_net, TorchContinuousNet), (_tagger, TorchTagger)])
def test_round_trip_through_module_and_file(make, cls, tmp_path):
    model = make()
    refode.save(model, tmp_path / "m.h5")
    family, cfg, dtype = rt.config(tmp_path / "m.h5")
    module = cls(**cfg, dtype=dtype)
    module.load_state_dict(rt.state_dict(tmp_path / "m.h5"), strict=True)
    back = rt.save(module.state_dict(), family, cfg, tmp_path / "back.h5")
    again = refode.load(tmp_path / "back.h5")
    for mine, theirs in ((model.params, again.params), (model.state, again.state)):
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert np.array_equal(mine[k], theirs[k]), k
    assert back.dtype == model.dtype


def test_float32_state_dict_and_dtype_inferred():
    model = _net(np.float32)
    sd = rt.state_dict(model)
    assert all(v.dtype == torch.float32 for k, v in sd.items()
               if not k.endswith("num_batches_tracked"))
    assert rt.to_refode(sd, *rt.config(model)[:2]).dtype == np.float32
    assert rt.state_dict(model, dtype="float64")["dense.weight"].dtype == torch.float64


def test_missing_and_misshapen_tensors_are_named():
    model = _net()
    family, cfg, _ = rt.config(model)
    sd = rt.state_dict(model)
    del sd["block1.conv1.weight"]
    with pytest.raises(RefodeError, match="block1.conv1.weight"):
        rt.to_refode(sd, family, cfg)
    sd = rt.state_dict(model)
    sd["dense.bias"] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ShapeError, match="dense.bias"):
        rt.to_refode(sd, family, cfg)
    with pytest.raises(RefodeError, match="source"):
        rt.state_dict(42)
