"""The training loop: seeded mini-batches, multilevel refinement, checkpoints, resume.

A run is a pure function of its arguments: the shuffling generator is seeded, every
piece of state that changes (model arrays, optimizer state, the generator's state,
the epoch and refinement level) is written to the checkpoint after every epoch, so a
run interrupted and resumed from its checkpoint ends with bitwise the same weights
as an uninterrupted one.
"""
import os
import time

import numpy as np

from .. import _validate
from ..errors import RefodeError
from .checkpoint import load_checkpoint, save_checkpoint
from .progress import ProgressBar
from .refinement import refine_model

#: images per forward pass of :func:`evaluate` (bounds the memory of the im2col buffers).
EVAL_BATCH = 256


def predict(model, x, batch_size=EVAL_BATCH):
    """Evaluation-mode logits of ``x`` computed in batches of ``batch_size``."""
    batch_size = _validate.positive_int(batch_size, "batch_size")
    parts = [model.forward(x[i:i + batch_size], train=False)
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts)


def evaluate(model, x, y, batch_size=EVAL_BATCH):
    """Top-1 accuracy (a fraction in [0, 1]) of ``model`` on ``(x, y)``, batched."""
    y = np.asarray(y)
    if len(x) != len(y) or len(y) == 0:
        raise RefodeError(f"`x` and `y` must be non-empty and of equal length, "
                          f"got {len(x)} and {len(y)}")
    return float(np.mean(predict(model, x, batch_size).argmax(axis=1) == y))


class Trainer:
    """Mini-batch training of a :class:`~refode.models.ContinuousNet` with refinement.

    Parameters
    ----------
    model : ContinuousNet
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
        Draw a progress bar on standard error.
    eval_data : (x, y), optional
        Held-out data whose accuracy ends each epoch's progress line and history.

    Attributes
    ----------
    model : ContinuousNet
        The current model (replaced at every refinement).
    history : list of dict
        One entry per epoch run in this process: epoch, n_basis, n_steps, loss,
        accuracy (or None), seconds.
    """

    def __init__(self, model, optimizer, *, epochs, batch_size=64, refine_at=(), seed=0,
                 lr_schedule=None, checkpoint=None, progress=True, eval_data=None):
        self.model, self.optimizer = model, optimizer
        self.epochs = _validate.positive_int(epochs, "epochs")
        self.batch_size = _validate.positive_int(batch_size, "batch_size")
        self.refine_at = frozenset(int(e) for e in refine_at)
        self.rng = np.random.default_rng(seed)
        self.lr_schedule, self.checkpoint = lr_schedule, checkpoint
        self.progress, self.eval_data = bool(progress), eval_data
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

    def _run_epoch(self, x, y):
        n = len(y)
        order = self.rng.permutation(n)
        batches = range(0, n, self.batch_size)
        prefix = (f"epoch {self.epoch + 1:>{len(str(self.epochs))}}/{self.epochs}  "
                  f"K={self.model.basis.n} N={self.model.n_steps}")
        bar = ProgressBar(len(batches), prefix, enabled=self.progress)
        for start in batches:
            idx = order[start:start + self.batch_size]
            loss, grads = self.model.loss_and_gradients(x[idx], y[idx])
            self.optimizer.step(self.model.params, grads)
            bar.update(loss)
        accuracy = None if self.eval_data is None else evaluate(self.model, *self.eval_data)
        bar.close(accuracy)
        return bar.running_loss, accuracy

    def fit(self, x, y, *, resume=False):
        """Train until :attr:`epochs`; with ``resume``, continue from the checkpoint.

        Parameters
        ----------
        x : (n, C, H, W) images
        y : (n,) int labels

        Returns
        -------
        ContinuousNet
            The trained model (also :attr:`model`).
        """
        if len(x) != len(y) or len(y) == 0:
            raise RefodeError(f"`x` and `y` must be non-empty and of equal length, "
                              f"got {len(x)} and {len(y)}")
        if resume:
            self.resume()
        while self.epoch < self.epochs:
            if self.epoch in self.refine_at:
                self._refine()
            if self.lr_schedule is not None:
                self.optimizer.lr = float(self.lr_schedule(self.epoch))
            start = time.perf_counter()
            loss, accuracy = self._run_epoch(x, y)
            self.history.append({"epoch": self.epoch, "n_basis": self.model.basis.n,
                                 "n_steps": self.model.n_steps, "loss": loss,
                                 "accuracy": accuracy, "seconds": time.perf_counter() - start})
            self.epoch += 1
            if self.checkpoint is not None:
                save_checkpoint(self.checkpoint, self.model, self.optimizer, self.rng,
                                epoch=self.epoch, level=self.level)
        return self.model


def fit(model, optimizer, x, y, **kwargs):
    """Shortcut: ``Trainer(model, optimizer, **kwargs).fit(x, y)``; returns the model."""
    resume = kwargs.pop("resume", False)
    return Trainer(model, optimizer, **kwargs).fit(x, y, resume=resume)
