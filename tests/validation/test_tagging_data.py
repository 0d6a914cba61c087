"""The tagging experiment's vocabulary: exact forms, lowercase back-off, unknown-word
signatures (trained on the words seen once), encoding and padding."""
import numpy as np
import pytest

from refode.errors import RefodeError
from validation import tagging_data


def test_vocabulary_keeps_frequent_forms_and_signs_the_rest():
    train = [[("US", "PROPN"), ("us", "PRON"), ("Running", "VERB")],
             [("US", "PROPN"), ("us", "PRON"), ("running", "VERB"), ("preaching", "VERB")],
             [("forgetting", "VERB"), ("3,000", "NUM"), ("ok", "INTJ")]]
    vocab = tagging_data.Vocabulary(train)
    ids = {form: vocab.encode(form) for form in ("US", "us", "Running", "RUNNING", "Us")}
    assert ids["US"][0] != ids["us"][0] and all(known for _, known in ids.values())
    assert ids["Running"] == ids["RUNNING"] == vocab.encode("running")  # lowercase back-off
    assert ids["Us"] == ids["us"]
    # "-ing" words seen once: no own id, but their (twice seen) signature is trained
    assert vocab.encode("preaching") == (vocab.ids["<unk:lower:-ing>"], False)
    assert vocab.encode("singing") == vocab.encode("preaching")
    assert vocab.encode("3,000") == (tagging_data.UNK_ID, False)  # <unk:number> seen < 2 times
    assert tagging_data.signature("www.x.com") == "<unk:url>"
    assert tagging_data.signature("--") == "<unk:punct>"
    assert tagging_data.signature("AK-47") == "<unk:caps:digit:dash>"
    assert tagging_data.signature("Al-Zaman") == "<unk:cap:dash>"
    assert tagging_data.signature("1990s") == "<unk:number>"
    assert tagging_data.signature("iPhone") == "<unk:mixed>"


def test_encode_pads_ids_and_tags_and_counts_unknown_tokens():
    train = [[("the", "DET"), ("dog", "NOUN")], [("the", "DET"), ("dog", "NOUN"),
                                                 ("barks", "VERB")]]
    vocab = tagging_data.Vocabulary(train)
    x, y, lengths, unknown = tagging_data.encode(train, vocab)
    assert x.shape == y.shape == (2, 3) and list(lengths) == [2, 3] and unknown == 1
    assert x[0, 2] == tagging_data.PAD_ID and y[0, 2] == -100
    assert x[1, 2] == tagging_data.UNK_ID  # "barks": seen once, its signature too
    np.testing.assert_array_equal(y[1], [5, 7, 15])  # DET, NOUN, VERB in UPOS order
    with pytest.raises(RefodeError, match="'NN'"):
        tagging_data.encode([[("dog", "NN")]], vocab)


def test_word_dropout_replaces_rare_words_by_their_signature_reproducibly():
    train = [[("the", "DET"), ("dog", "NOUN"), ("runs", "VERB")]] * 2 + \
        [[("the", "DET"), ("cat", "NOUN"), ("sleeps", "VERB")]] * 2 + [[("the", "DET")]] * 96
    vocab = tagging_data.Vocabulary(train)
    x, y, _, _ = tagging_data.encode(train[:4] * 50, vocab)  # 200 sentences
    x = np.concatenate([x, np.zeros((len(x), 2), np.int64)], axis=1)  # 2 padding columns
    y = np.concatenate([y, np.full((len(y), 2), -100)], axis=1)
    dropout = tagging_data.WordDropout(vocab, alpha=1.0, seed=3)
    xd, yd = dropout(x, y)
    assert xd.shape == yd.shape == (200, 3)  # trimmed
    np.testing.assert_array_equal(yd, y[:, :3])
    changed = xd != x[:, :3]
    the, dog = vocab.ids["the"], vocab.ids["dog"]
    assert changed[x[:, :3] == the].mean() < 0.05  # "the" seen 100 times: p = 1/101
    rate = changed[x[:, :3] == dog].mean()  # "dog" seen twice: p = 1/3
    assert 0.2 < rate < 0.5
    assert set(np.unique(xd[changed])) <= {vocab.ids.get("<unk:lower>", tagging_data.UNK_ID),
                                           vocab.ids.get("<unk:lower:-s>", tagging_data.UNK_ID)}
    again, _ = tagging_data.WordDropout(vocab, alpha=1.0, seed=3)(x, y)
    other, _ = tagging_data.WordDropout(vocab, alpha=1.0, seed=4)(x, y)
    np.testing.assert_array_equal(again, xd)
    assert not np.array_equal(other, xd)
