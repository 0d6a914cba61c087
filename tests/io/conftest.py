"""Small models and their saved files, shared by the io tests."""
import numpy as np
import pytest

import refode
from refode.models import ContinuousNet, ContinuousTagger


def small_net(dtype=np.float64, n_basis=2, n_steps=2):
    """ContinuousNet with widths (4, 8), one input channel and 3 classes."""
    return ContinuousNet(in_channels=1, n_classes=3, widths=(4, 8), n_basis=n_basis,
                         n_steps=n_steps, seed=1, dtype=dtype)


def small_tagger(dtype=np.float64):
    """ContinuousTagger of width 8 and K = 2."""
    return ContinuousTagger(vocab_size=11, n_tags=5, width=8, ffn=8, n_basis=2, seed=2,
                            dtype=dtype)


MAKERS = {"net": small_net, "tagger": small_tagger}


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """``{(family, dtype name): path}`` of saved small models (written once)."""
    folder = tmp_path_factory.mktemp("saved")
    out = {}
    for family, make in MAKERS.items():
        for dtype in (np.float64, np.float32):
            path = folder / f"{family}_{np.dtype(dtype).name}.h5"
            refode.save(make(dtype), path)
            out[family, np.dtype(dtype).name] = path
    return out
