"""The training loop: seeded mini-batches, multilevel refinement, checkpoints, resume.

A run is a pure function of its arguments: the shuffling generator is seeded, every
piece of state that changes (model arrays, optimizer state, the generator's state,
the epoch and refinement level) is written to the checkpoint after every epoch, so a
run interrupted and resumed from its checkpoint ends with bitwise the same weights
as an uninterrupted one (the ``collate`` of the batches must be a pure function).

Both model families train alike: images ``(n, C, H, W)`` with labels ``(n,)``, or
padded sentences ``(n, L)`` with tags ``(n, L)`` (``-100`` at padding) and
``collate=trim_padding`` (:mod:`refode.train.collate`).
"""
import os
import time

import numpy as np

from .. import _validate
from ..errors import RefodeError
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import EVAL_BATCH, check_collate, count_correct, evaluate, predict
from .progress import ProgressBar
from .refinement import refine_model

__all__ = ["Trainer", "fit", "evaluate", "predict", "EVAL_BATCH"]


class Trainer:
    """Mini-batch training of a ContinuousNet or ContinuousTagger with refinement.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
        The initial model (``K = N`` of the first level); never modified in place
        by a refinement (a new model replaces it), but its arrays are trained.
    optimizer : SGD or Adam
    epochs : int
        Total epochs of the run.
    batch_size : int
    refine_at : iterable of int
        Epochs (0-based) at whose start ``K`` and ``N`` are doubled exactly
        (:func:`refine_model`) and the optimizer's moments reset.
    seed : int
        Seed of the shuffling generator.
    lr_schedule : callable, optional
        ``epoch -> learning rate``, applied at the start of every epoch.
    checkpoint : str or PathLike, optional
        HDF5 checkpoint written atomically after every epoch.
    progress : bool
        Draw a progress bar on standard error: running training loss and accuracy,
        and the held-out accuracy at the end of the epoch.
    eval_data : (x, y), optional
        Held-out data whose accuracy ends each epoch's progress line and history
        (evaluated in batches of ``EVAL_BATCH`` with ``eval_collate``).
    collate : callable, optional
        ``(x_batch, y_batch) -> (x, y)`` applied to every training batch before the
        model sees it, e.g. :func:`refode.train.trim_padding`.
    eval_collate : callable, optional
        The same for the batches of ``eval_data`` (default: ``collate``; differs when
        ``collate`` also augments the data, e.g. word dropout).
    on_epoch_end : callable, optional
        ``on_epoch_end(trainer)`` after every epoch (after the checkpoint is written),
        e.g. to save :attr:`history` beside the checkpoint.
    batches : callable, optional
        ``batches(rng, n, batch_size) -> list of index arrays``: the mini-batches of
        an epoch drawn with the run's generator ``rng`` (so a resumed run draws the
        same ones), e.g. :func:`refode.train.length_batches`. Default: a random
        permutation of the ``n`` examples cut into batches of ``batch_size``.

    Attributes
    ----------
    model : ContinuousNet or ContinuousTagger
        The current model (replaced at every refinement).
    history : list of dict
        One entry per epoch run in this process: epoch, n_basis, n_steps, loss
        (running mean training loss), train_accuracy (running training accuracy),
        accuracy (held-out, or None), seconds.
    """

    def __init__(self, model, optimizer, *, epochs, batch_size=64, refine_at=(), seed=0,
                 lr_schedule=None, checkpoint=None, progress=True, eval_data=None,
                 collate=None, eval_collate=None, on_epoch_end=None, batches=None):
        self.model, self.optimizer = model, optimizer
        self.epochs = _validate.positive_int(epochs, "epochs")
        self.batch_size = _validate.positive_int(batch_size, "batch_size")
        self.refine_at = frozenset(int(e) for e in refine_at)
        self.rng = np.random.default_rng(seed)
        self.lr_schedule, self.checkpoint = lr_schedule, checkpoint
        self.progress, self.eval_data = bool(progress), eval_data
        self.collate = check_collate(collate)
        self.eval_collate = collate if eval_collate is None else check_collate(eval_collate)
        for name, value in (("on_epoch_end", on_epoch_end), ("batches", batches)):
            if value is not None and not callable(value):
                raise RefodeError(f"`{name}` must be None or a callable, got "
                                  f"{type(value).__name__}")
        self.on_epoch_end, self.batches = on_epoch_end, batches
        self.epoch, self.level = 0, 0
        self.history = []

    def resume(self):
        """Continue from :attr:`checkpoint` if that file exists; True if it did."""
        if self.checkpoint is None or not os.path.exists(self.checkpoint):
            return False
        self.model, self.epoch, self.level = load_checkpoint(
            self.checkpoint, self.optimizer, self.rng)
        return True

    def _refine(self):
        self.model = refine_model(self.model)
        self.optimizer.reset()
        self.level += 1

    def _epoch_batches(self, n):
        if self.batches is not None:
            return list(self.batches(self.rng, n, self.batch_size))
        order = self.rng.permutation(n)
        return [order[start:start + self.batch_size] for start in range(0, n, self.batch_size)]

    def _run_epoch(self, x, y):
        batches = self._epoch_batches(len(y))
        prefix = (f"epoch {self.epoch + 1:>{len(str(self.epochs))}}/{self.epochs}  "
                  f"K={self.model.basis.n} N={self.model.n_steps}")
        bar = ProgressBar(len(batches), prefix, enabled=self.progress)
        for idx in batches:
            xb, yb = x[idx], y[idx]
            if self.collate is not None:
                xb, yb = self.collate(xb, yb)
            loss, grads, logits = self.model.loss_and_gradients(xb, yb, return_logits=True)
            self.optimizer.step(self.model.params, grads)
            bar.update(loss, *count_correct(logits, yb))
        accuracy = None if self.eval_data is None else evaluate(
            self.model, *self.eval_data, collate=self.eval_collate)
        bar.close(accuracy)
        return bar.running_loss, bar.running_accuracy, accuracy

    def fit(self, x, y, *, resume=False):
        """Train until :attr:`epochs`; with ``resume``, continue from the checkpoint.

        Parameters
        ----------
        x : (n, C, H, W) images, or (n, L) int64 padded token ids
        y : (n,) int labels, or (n, L) int64 tags with ``-100`` at padding

        Returns
        -------
        ContinuousNet or ContinuousTagger
            The trained model (also :attr:`model`).
        """
        if len(x) != len(y) or len(y) == 0:
            raise RefodeError(f"`x` and `y` must be non-empty and of equal length, "
                              f"got {len(x)} and {len(y)}")
        check = getattr(self.model, "check_batch", None)
        if check is not None:
            check(x, y)   # every label and image before the first step, not at epoch 3
        if resume:
            self.resume()
        while self.epoch < self.epochs:
            if self.epoch in self.refine_at:
                self._refine()
            if self.lr_schedule is not None:
                self.optimizer.lr = float(self.lr_schedule(self.epoch))
            start = time.perf_counter()
            loss, train_accuracy, accuracy = self._run_epoch(x, y)
            self.history.append({"epoch": self.epoch, "n_basis": self.model.basis.n,
                                 "n_steps": self.model.n_steps, "loss": loss,
                                 "train_accuracy": train_accuracy, "accuracy": accuracy,
                                 "seconds": time.perf_counter() - start})
            self.epoch += 1
            if self.checkpoint is not None:
                save_checkpoint(self.checkpoint, self.model, self.optimizer, self.rng,
                                epoch=self.epoch, level=self.level)
            if self.on_epoch_end is not None:
                self.on_epoch_end(self)
        return self.model


def fit(model, optimizer, x, y, **kwargs):
    """Shortcut: ``Trainer(model, optimizer, **kwargs).fit(x, y)``; returns the model."""
    resume = kwargs.pop("resume", False)
    return Trainer(model, optimizer, **kwargs).fit(x, y, resume=resume)
