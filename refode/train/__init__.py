"""Training: NumPy optimizers, the refinement training loop, checkpoints, evaluation.

- :class:`SGD` (momentum, L2 weight decay), :class:`Adam` (linear warm-up, inverse
  square-root decay), :func:`warmup_rsqrt`
- :class:`Trainer`, :func:`fit`, :func:`evaluate` (an :class:`Accuracy`), :func:`predict`
- :func:`refine_model` (exact ``K``/``N`` doubling of either model), :class:`ProgressBar`
- :func:`pad_sequences`, :func:`trim_padding`, :func:`length_batches` (batches of
  padded sentences),
  :func:`count_correct`
- :func:`save_checkpoint`, :func:`load_checkpoint`
"""
from .checkpoint import load_checkpoint, save_checkpoint
from .collate import length_batches, pad_sequences, trim_padding
from .evaluation import Accuracy, count_correct, count_nonfinite, evaluate, predict
from .optim import SGD, Adam, warmup_rsqrt
from .progress import ProgressBar
from .refinement import refine_model
from .trainer import Trainer, fit

__all__ = ["SGD", "Adam", "warmup_rsqrt", "Trainer", "fit", "evaluate", "predict",
           "refine_model", "ProgressBar", "save_checkpoint", "load_checkpoint",
           "pad_sequences", "trim_padding", "length_batches", "count_correct",
           "count_nonfinite", "Accuracy"]
