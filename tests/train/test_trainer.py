"""The training loop: interrupted + resumed equals uninterrupted (bitwise), checkpoints,
the progress bar, evaluation; for the ContinuousNet and the tagger."""
import io

import h5py
import numpy as np
import pytest

from refode.errors import RefodeError
from refode.models import ContinuousNet, ContinuousTagger
from refode.train import (SGD, Adam, ProgressBar, Trainer, evaluate, fit, length_batches,
                          load_checkpoint, pad_sequences, trim_padding)

EPOCHS, REFINE_AT, BATCH = 4, (1, 3), 5


class Interrupted(Exception):
    """A simulated crash in the middle of an epoch."""


def _failing(optimizer_class):
    """A subclass of ``optimizer_class`` that raises :class:`Interrupted` at its
    ``fail_at``-th step (the earlier steps are the optimizer's own)."""

    class Failing(optimizer_class):
        def __init__(self, *args, fail_at, **kwargs):
            super().__init__(*args, **kwargs)
            self.fail_at, self.calls = fail_at, 0

        def step(self, params, grads):
            self.calls += 1
            if self.calls == self.fail_at:
                raise Interrupted
            super().step(params, grads)

    Failing.__name__ = f"Failing{optimizer_class.__name__}"
    return Failing


FailingSGD, FailingAdam = _failing(SGD), _failing(Adam)


def _data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((12, 1, 6, 6)), rng.integers(0, 3, 12)


def _model():
    return ContinuousNet(in_channels=1, n_classes=3, widths=(2, 3), n_basis=1, n_steps=1,
                         seed=5)


def _trainer(optimizer, checkpoint, **kwargs):
    return Trainer(_model(), optimizer, epochs=EPOCHS, batch_size=BATCH, refine_at=REFINE_AT,
                   seed=11, lr_schedule=lambda e: 0.05 / (1 + e), checkpoint=checkpoint,
                   progress=False, **kwargs)


def _arrays(model):
    return {**{f"p/{k}": v for k, v in model.params.items()},
            **{f"s/{k}": v for k, v in model.state.items()}}


def test_interrupted_and_resumed_run_equals_uninterrupted_bitwise(tmp_path):
    x, y = _data()
    whole = _trainer(SGD(0.05, momentum=0.9, weight_decay=1e-3), tmp_path / "a.h5").fit(x, y)

    # crash in the middle of epoch 3 (3 batches per epoch): the last checkpoint is epoch 2's
    crashing = _trainer(FailingSGD(0.05, momentum=0.9, weight_decay=1e-3, fail_at=8),
                        tmp_path / "b.h5")
    with pytest.raises(Interrupted):
        crashing.fit(x, y)
    with h5py.File(tmp_path / "b.h5") as f:
        assert (f.attrs["epoch"], f.attrs["level"]) == (2, 1)

    resumed_trainer = _trainer(SGD(0.05, momentum=0.9, weight_decay=1e-3), tmp_path / "b.h5")
    resumed = resumed_trainer.fit(x, y, resume=True)
    assert [h["epoch"] for h in resumed_trainer.history] == [2, 3]
    assert (resumed.basis.n, resumed.n_steps) == (whole.basis.n, whole.n_steps) == (4, 4)
    a, b = _arrays(whole), _arrays(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert resumed.params["block1.conv1.weight"].shape[0] == 4


def test_resume_restores_adam_state_and_rng(tmp_path):
    x, y = _data()
    t = _trainer(Adam(0.01, warmup=3), tmp_path / "c.h5")
    t.epochs = 2
    t.fit(x, y)
    opt, rng = Adam(0.01, warmup=3), np.random.default_rng(0)
    model, epoch, level = load_checkpoint(tmp_path / "c.h5", opt, rng)
    assert (epoch, level) == (2, 1)
    assert opt.steps == 6 and opt.moment_steps == 3  # moments reset at the refinement
    assert rng.bit_generator.state == t.rng.bit_generator.state
    for name, arr in _arrays(t.model).items():
        assert np.array_equal(arr, _arrays(model)[name])
        assert arr.dtype == _arrays(model)[name].dtype


def test_training_learns_and_evaluate_counts_correct_predictions():
    x, y = _data()
    model = _model()
    before = model.loss(x, y, train=False)
    trained = fit(model, SGD(0.1), x, y, epochs=3, batch_size=12, progress=False)
    assert trained.loss(x, y, train=False) < before
    acc = evaluate(trained, x, y, batch_size=5)
    predictions = trained.forward(x, train=False).argmax(axis=1)
    assert acc == np.mean(predictions == y)


def test_progress_bar_prints_epoch_batches_loss_and_accuracy(capsys):
    x, y = _data()
    Trainer(_model(), SGD(0.1), epochs=1, batch_size=5, eval_data=(x, y)).fit(x, y)
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("epoch 1/1  K=1 N=1  batch 3/3  loss ")
    assert " acc " in last and last.endswith("s")
    assert err.endswith("\n")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_redraws_in_place_on_a_terminal_only():
    tty, log = FakeTerminal(), io.StringIO()
    for stream in (tty, log):
        bar = ProgressBar(2, "e", stream=stream)
        bar.update(1.0)
        bar.update(3.0)
        bar.close()
    # the last batch always redraws on a terminal; a log file gets the final line only
    assert tty.getvalue().count("\r") == 2 and "batch 2/2  loss 2.0000" in tty.getvalue()
    assert log.getvalue().count("\r") == 1 and log.getvalue().count("\n") == 1


def test_progress_bar_running_loss_and_disabled_is_silent():
    out = io.StringIO()
    bar = ProgressBar(2, "x", stream=out)
    bar.update(1.0)
    bar.update(2.0)
    bar.close(0.5)
    assert bar.running_loss == 1.5 and "loss 1.5000  acc  50.00%" in out.getvalue()
    quiet = io.StringIO()
    silent = ProgressBar(1, stream=quiet, enabled=False)
    silent.update(1.0)
    silent.close()
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------- the tagger
#: tiny tagger run: vocabulary, tags, width, sentences, epochs, refinement, batch.
T_VOCAB, T_TAGS, T_WIDTH, T_SENTENCES = 30, 4, 8, 10
T_EPOCHS, T_REFINE_AT, T_BATCH = 3, (1,), 4


def _sentences(seed=3):
    """Padded ids ``(10, 9)`` and tags (``-100`` at padding); two columns all padding."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 8, T_SENTENCES)
    ids = [rng.integers(1, T_VOCAB, n) for n in lengths]
    tags = [i % T_TAGS for i in ids]  # a learnable rule: the tag is the id modulo 4
    return (pad_sequences(ids, 0, length=9), pad_sequences(tags, -100, length=9))


def _tagger():
    return ContinuousTagger(T_VOCAB, T_TAGS, width=T_WIDTH, heads=1, ffn=T_WIDTH, n_basis=1,
                            n_steps=1, seed=4)


def _tagger_trainer(optimizer, checkpoint, **kwargs):
    return Trainer(_tagger(), optimizer, epochs=T_EPOCHS, batch_size=T_BATCH,
                   refine_at=T_REFINE_AT, seed=12, checkpoint=checkpoint, progress=False,
                   collate=trim_padding, **kwargs)


@pytest.mark.parametrize("by_length", [False, True])
def test_interrupted_and_resumed_tagger_run_equals_uninterrupted_bitwise(tmp_path, by_length):
    x, y = _sentences()
    strategy = length_batches((x != 0).sum(axis=1), 12) if by_length else None
    per_epoch = len(strategy(np.random.default_rng(0), len(x), 0)) if by_length else 3
    whole = _tagger_trainer(Adam(0.01, warmup=2), tmp_path / "a.h5",
                            batches=strategy).fit(x, y)

    # the crash is in epoch 3 (its second step), after the refinement at epoch 2
    crashing = _tagger_trainer(FailingAdam(0.01, warmup=2, fail_at=2 * per_epoch + 2),
                               tmp_path / "b.h5", batches=strategy)
    with pytest.raises(Interrupted):
        crashing.fit(x, y)
    with h5py.File(tmp_path / "b.h5") as f:
        assert (f.attrs["epoch"], f.attrs["level"]) == (2, 1)

    resumed_trainer = _tagger_trainer(Adam(0.01, warmup=2), tmp_path / "b.h5",
                                      batches=strategy)
    resumed = resumed_trainer.fit(x, y, resume=True)
    assert isinstance(resumed, ContinuousTagger)
    assert [h["epoch"] for h in resumed_trainer.history] == [2]
    assert (resumed.basis.n, resumed.n_steps) == (whole.basis.n, whole.n_steps) == (2, 2)
    assert whole.params.keys() == resumed.params.keys()
    for name, arr in whole.params.items():
        assert np.array_equal(arr, resumed.params[name]), name
    assert not np.array_equal(whole.params["ode.mlp_w1"], _tagger().params["ode.mlp_w1"][[0, 0]])


def test_tagger_history_has_training_and_held_out_token_accuracy():
    x, y = _sentences()
    trainer = _tagger_trainer(Adam(0.05, warmup=1), None, eval_data=(x, y))
    seen = []
    trainer.on_epoch_end = lambda t: seen.append(len(t.history))
    model = trainer.fit(x, y)
    assert seen == [1, 2, 3]
    for h in trainer.history:
        assert 0.0 <= h["train_accuracy"] <= 1.0 and 0.0 <= h["accuracy"] <= 1.0
    # the held-out accuracy is token accuracy of the final model on the real tokens
    logits = model.forward(x)
    real = y != -100
    want = np.mean(logits.argmax(axis=-1)[real] == y[real])
    assert trainer.history[-1]["accuracy"] == pytest.approx(want, abs=1e-12)


def test_training_accuracy_is_the_running_accuracy_of_the_batches():
    # one batch per epoch: the running training accuracy is that batch's accuracy,
    # measured before the step, i.e. the accuracy of the model at the epoch's start
    x, y = _data()
    trainer = Trainer(_model(), SGD(0.1), epochs=1, batch_size=len(y), progress=False)
    logits = trainer.model.forward(x, train=True, update_state=False)
    trainer.fit(x, y)
    assert trainer.history[0]["train_accuracy"] == np.mean(logits.argmax(axis=1) == y)
    assert trainer.history[0]["accuracy"] is None


def test_progress_bar_shows_the_running_training_accuracy():
    out = io.StringIO()
    bar = ProgressBar(2, "x", stream=out)
    bar.update(1.0, 3, 4)
    bar.update(2.0, 0, 4)
    bar.close(0.25)
    assert bar.running_accuracy == 3 / 8
    assert "loss 1.5000  train  37.50%  acc  25.00%" in out.getvalue()


def test_trainer_refuses_a_collate_that_is_not_callable():
    with pytest.raises(RefodeError, match="`collate`"):
        Trainer(_tagger(), Adam(0.01), epochs=1, collate="trim")
    with pytest.raises(RefodeError, match="`on_epoch_end`"):
        Trainer(_tagger(), Adam(0.01), epochs=1, on_epoch_end=3)
    with pytest.raises(RefodeError, match="`batches`"):
        Trainer(_tagger(), Adam(0.01), epochs=1, batches=[[0, 1]])


def test_eval_collate_replaces_collate_for_the_held_out_data():
    x, y = _sentences()
    seen = []

    def training_collate(xb, yb):
        seen.append("train")
        return trim_padding(xb, yb)

    def eval_collate(xb, yb):
        seen.append("eval")
        return xb, yb

    trainer = Trainer(_tagger(), Adam(0.01), epochs=1, batch_size=5, progress=False,
                      eval_data=(x, y), collate=training_collate, eval_collate=eval_collate)
    trainer.fit(x, y)
    assert seen == ["train", "train", "eval"]
