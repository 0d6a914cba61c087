"""Small seeded tagger configurations and batches shared by the tagger tests."""
import functools

import numpy as np

from refode.models import ContinuousTagger

#: the small configuration of the tests (width 8, ffn 6, vocab 11, 5 tags).
VOCAB, TAGS, WIDTH, FFN = 11, 5, 8, 6
#: token id of padding.
PAD = 0
#: token ids of a batch of 3 sequences of length 5, with padding at the end.
IDS = np.array([[3, 4, 5, PAD, PAD], [1, 2, 3, 4, 10], [7, PAD, PAD, PAD, PAD]], dtype=np.int64)
#: standard deviation of the perturbation that makes every parameter generic.
PERTURBATION = 0.3


def batch(seed=0, ids=IDS):
    """``(ids, targets)`` with random tags and ``-100`` at padding."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, TAGS, ids.shape).astype(np.int64)
    targets[ids == PAD] = -100
    return ids, targets


def tagger(seed=0, **options):
    """A small tagger whose every array (layer norms included) is randomly perturbed."""
    config = dict(width=WIDTH, heads=1, ffn=FFN, n_basis=2, n_steps=2, padding_id=PAD)
    config.update(options)
    model = ContinuousTagger(VOCAB, TAGS, seed=seed, **config)
    rng = np.random.default_rng(seed + 1000)
    for array in model.params.values():
        array += PERTURBATION * rng.standard_normal(array.shape)
    return model


@functools.lru_cache(maxsize=None)
def warm():
    """Compile every kernel the tagger uses (once per process)."""
    ids, targets = batch()
    for bias in (False, True):
        model = tagger(attention_bias=bias, heads=2, rate="pre_ln" if bias else "paper")
        model.loss_and_gradients(ids, targets)
        model.loss(ids, targets)
    return True
