"""Padded sentence batches: padding and trimming, and that trimming keeps the tagger's
outputs on real tokens."""
import numpy as np
import pytest

from refode.errors import RefodeError, ShapeError
from refode.train import length_batches, pad_sequences, trim_padding

from ..models.tagger_setup import tagger


def test_pad_sequences_pads_at_the_end():
    out = pad_sequences([[3, 1], [2], []], 0)
    np.testing.assert_array_equal(out, [[3, 1], [2, 0], [0, 0]])
    assert out.dtype == np.int64
    tags = pad_sequences([[1], [2, 3]], -100, length=4)
    np.testing.assert_array_equal(tags, [[1, -100, -100, -100], [2, 3, -100, -100]])
    with pytest.raises(RefodeError, match="`length`"):
        pad_sequences([[1, 2, 3]], 0, length=2)


def test_trim_padding_drops_trailing_all_padding_columns_only():
    x = np.array([[4, 0, 5, 0, 0], [6, 0, 0, 0, 0]])
    y = np.where(x == 0, -100, 1)
    xs, ys = trim_padding(x, y)
    np.testing.assert_array_equal(xs, x[:, :3])  # the inner padding column 1 stays
    np.testing.assert_array_equal(ys, y[:, :3])
    assert xs.flags.c_contiguous and ys.flags.c_contiguous
    xs, none = trim_padding(np.zeros((2, 4), np.int64))
    assert xs.shape == (2, 1) and none is None  # all padding: one column is kept
    xs, _ = trim_padding(np.array([[7, 7, 1]]), padding_id=7)
    np.testing.assert_array_equal(xs, [[7, 7, 1]])


def test_trim_padding_refuses_bad_input():
    with pytest.raises(ShapeError, match="`x`"):
        trim_padding(np.zeros((2, 3, 4), np.int64))
    with pytest.raises(ShapeError, match="`y`"):
        trim_padding(np.ones((2, 3), np.int64), np.ones((2, 2), np.int64))
    x = np.array([[1, 0]])
    with pytest.raises(RefodeError, match="-100"):
        trim_padding(x, np.array([[0, 2]]))


def test_trimmed_batch_gives_the_tagger_the_same_real_logits():
    model = tagger()
    x = np.array([[3, 4, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0]])
    xs, _ = trim_padding(x)
    real = x[:, :2] != 0
    np.testing.assert_allclose(model.forward(xs)[real], model.forward(x)[:, :2][real],
                               rtol=1e-13, atol=1e-13)


def test_length_batches_group_similar_lengths_under_the_token_budget():
    lengths = np.array([5, 1, 2, 2, 9, 1, 3, 2, 20, 4])
    strategy = length_batches(lengths, max_tokens=6)
    rng = np.random.default_rng(0)
    first, second = strategy(rng, len(lengths), 3), strategy(rng, len(lengths), 3)
    for epoch in (first, second):
        members = np.sort(np.concatenate(epoch))
        np.testing.assert_array_equal(members, np.arange(len(lengths)))  # each once
        for idx in epoch:
            assert len(idx) == 1 or len(idx) * lengths[idx].max() <= 6
    # sorted lengths 1 1 2 2 2 3 4 5 9 20 -> [1 1 2] [2 2] [3] [4] [5] [9] [20]
    sizes = [1, 1, 1, 1, 1, 2, 3]
    assert sorted(len(b) for b in first) == sorted(len(b) for b in second) == sizes
    assert [list(b) for b in first] != [list(b) for b in second]  # reshuffled
    again = strategy(np.random.default_rng(0), len(lengths), 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # seeded


def test_length_batches_refuse_bad_lengths_and_sizes():
    with pytest.raises(RefodeError, match="`lengths`"):
        length_batches(np.array([3, 0]), 8)
    with pytest.raises(RefodeError, match="`max_tokens`"):
        length_batches(np.array([3]), 0)
    with pytest.raises(RefodeError, match="`lengths`"):
        length_batches(np.array([3, 2]), 8)(np.random.default_rng(0), 3, 1)
