"""Batched evaluation: top-1 accuracy of images, token accuracy of the tagger (padding
not counted, batches of different trimmed lengths), predictions."""
import warnings

import numpy as np
import pytest

from refode.errors import RefodeError, RefodeWarning, ShapeError
from refode.train import count_correct, evaluate, pad_sequences, predict, trim_padding

from ..models.tagger_setup import TAGS, VOCAB, tagger


def test_count_correct_counts_images_and_unpadded_tokens():
    logits = np.array([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert count_correct(logits, np.array([1, 1, 1])) == (2, 3)
    tokens = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [5.0, 0.0]]])
    tags = np.array([[0, 0], [1, -100]])  # correct, wrong, correct, not counted
    assert count_correct(tokens, tags) == (2, 3)
    with pytest.raises(ShapeError, match="`y`"):
        count_correct(tokens, np.zeros(2, np.int64))


def _corpus(seed=5, n=9):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, n)
    ids = pad_sequences([rng.integers(1, VOCAB, k) for k in lengths], 0, length=8)
    tags = pad_sequences([rng.integers(0, TAGS, k) for k in lengths], -100, length=8)
    return ids, tags


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_token_accuracy_of_the_tagger_batched_and_trimmed(batch_size):
    model = tagger()
    x, y = _corpus()
    real = y != -100
    want = np.mean(model.forward(x).argmax(axis=-1)[real] == y[real])
    got = evaluate(model, x, y, batch_size=batch_size, collate=trim_padding)
    assert got == pytest.approx(want, abs=1e-15)
    assert evaluate(model, x, y, batch_size=batch_size) == pytest.approx(want, abs=1e-15)
    assert 0.0 < want < 1.0


def test_predict_with_trimming_pads_the_logits_back_with_zeros():
    model = tagger()
    x, _ = _corpus()
    full = predict(model, x, batch_size=4)
    trimmed = predict(model, x, batch_size=4, collate=trim_padding)
    assert trimmed.shape == full.shape == (*x.shape, TAGS)
    real = x != 0
    np.testing.assert_allclose(trimmed[real], full[real], rtol=1e-13, atol=1e-13)
    first_length = trim_padding(x[:4])[0].shape[1]  # the first batch's trimmed length
    assert first_length < x.shape[1]
    assert not trimmed[:4, first_length:].any() and full[:4, first_length:].any()


def test_evaluate_refuses_empty_or_uncounted_targets():
    model = tagger()
    x, y = _corpus()
    with pytest.raises(RefodeError, match="`x` and `y`"):
        evaluate(model, x[:0], y[:0])
    with pytest.raises(RefodeError, match="-100"):
        evaluate(model, x, np.full_like(y, -100))
    with pytest.raises(RefodeError, match="`collate`"):
        evaluate(model, x, y, collate=1)



class _Constant:
    """Predicts class 1 everywhere; row 0's logits are NaN when ``broken``."""

    def __init__(self, broken):
        self.broken = broken

    def forward(self, x, train=False):
        logits = np.tile(np.eye(3)[1], (len(x), 1))
        if self.broken:
            logits[0] = np.nan
        return logits


def test_evaluate_warns_about_nonfinite_logits():
    x, y = np.zeros((4, 1)), np.array([1, 1, 0, 1])
    with pytest.warns(RefodeWarning, match="1 of 4 predictions have non-finite"):
        # argmax of the NaN row is class 0, which is wrong for its label 1
        assert evaluate(_Constant(True), x, y) == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", RefodeWarning)
        assert evaluate(_Constant(False), x, y) == 0.75


def test_nonfinite_logits_count_as_wrong_never_as_class_zero():
    x, y = np.zeros((4, 1)), np.array([0, 1, 0, 1])  # the NaN row's label is class 0
    with pytest.warns(RefodeWarning, match="1 of 4 predictions have non-finite logits "
                                           r"\(counted as wrong\)"):
        accuracy = evaluate(_Constant(True), x, y)
    assert accuracy == 0.5 and accuracy.nonfinite == 1  # argmax of NaN would say 0.75
    assert (accuracy.correct, accuracy.counted) == (2, 4)
    clean = evaluate(_Constant(False), x, y)
    assert clean == 0.5 and clean.nonfinite == 0 and isinstance(clean, float)
    assert count_correct(np.array([[np.nan, 0.0], [0.0, np.inf]]), np.array([0, 1])) == (0, 2)
    import pickle
    again = pickle.loads(pickle.dumps(accuracy))
    assert again == accuracy and again.nonfinite == 1
