"""A tiny trained ContinuousNet, its data files and a sweep configuration."""
import json

import numpy as np
import pytest

import refode
from refode.models import ContinuousNet

#: images of the tiny data set; side of its images.
N_IMAGES, SIDE = 24, 6


@pytest.fixture(scope="session")
def sweep_files(tmp_path_factory):
    """``{"model", "data", "calibration", "config"}`` paths of a tiny sweep."""
    folder = tmp_path_factory.mktemp("sweep")
    model = ContinuousNet(in_channels=1, n_classes=3, widths=(4,), n_basis=4, n_steps=4, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.random((N_IMAGES, 1, SIDE, SIDE)), rng.integers(0, 3, N_IMAGES)
    for _ in range(2):
        model.forward(x, train=True)  # running statistics away from (0, 1)
    refode.save(model, folder / "model.h5")
    np.savez(folder / "data.npz", x=x, y=y)
    np.savez(folder / "calibration.npz", x=x[::-1] * 1.5, y=y)
    config = {"model": "model.h5",
              "grid": [{"basis": ["fem_linear", "legendre"], "n_basis": [2],
                        "stats": ["project", "recalibrate", "positive"], "n_steps": ["K", 4]},
                       {"basis": ["fem_linear"], "n_basis": [1]},  # invalid K: fails
                       {}],  # the model as it is
              "calibration": {"data": "calibration.npz", "samples": 16},
              "batch_size": 8}
    (folder / "sweep.json").write_text(json.dumps(config))
    return {"model": folder / "model.h5", "data": folder / "data.npz",
            "calibration": folder / "calibration.npz", "config": folder / "sweep.json"}
