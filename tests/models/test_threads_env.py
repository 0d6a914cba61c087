"""Outputs and gradients are bitwise identical under NUMBA_NUM_THREADS=1 and =2.

Each run is a fresh process (the variable is read when numba starts); both share an
on-disk kernel cache in a temporary folder so the second run does not recompile.
"""
import hashlib
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import hashlib, numba, numpy as np
from refode.models import ContinuousNet, ContinuousTagger

digest = hashlib.sha256()
def add(*arrays):
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())

rng = np.random.default_rng(7)
net = ContinuousNet(in_channels=2, n_classes=3, widths=(3, 4), basis="fem_linear",
                    n_basis=3, scheme="rk4", n_steps=2, seed=1)
x, y = rng.standard_normal((4, 2, 6, 6)), rng.integers(0, 3, 4)
loss, grads = net.loss_and_gradients(x, y)
add(net.forward(x, train=False), np.array(loss), *(grads[k] for k in sorted(grads)))

tag = ContinuousTagger(vocab_size=11, n_tags=4, width=8, heads=2, ffn=6, basis="legendre",
                       n_basis=2, scheme="midpoint", n_steps=2, seed=2)
ids = rng.integers(1, 11, (2, 5)); ids[1, 3:] = 0
tags = rng.integers(0, 4, (2, 5)); tags[ids == 0] = -100
loss, grads = tag.loss_and_gradients(ids, tags)
add(tag.forward(ids), np.array(loss), *(grads[k] for k in sorted(grads)))
print(numba.config.NUMBA_NUM_THREADS, digest.hexdigest())
"""


def _run(threads, cache_dir):
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "REFODE_CACHE": "1",
           "NUMBA_CACHE_DIR": str(cache_dir)}
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    count, digest = res.stdout.split()
    assert int(count) == threads
    return digest


@pytest.mark.slow
def test_models_bitwise_identical_for_one_and_two_threads(tmp_path):
    assert _run(1, tmp_path) == _run(2, tmp_path)
