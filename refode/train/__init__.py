"""Training: NumPy optimizers, the refinement training loop, checkpoints, evaluation.

- :class:`SGD` (momentum, L2 weight decay), :class:`Adam` (linear warm-up, inverse
  square-root decay), :func:`warmup_rsqrt`
- :class:`Trainer`, :func:`fit`, :func:`evaluate`, :func:`predict`
- :func:`refine_model` (exact ``K``/``N`` doubling), :class:`ProgressBar`
- :func:`save_checkpoint`, :func:`load_checkpoint`
"""
from .checkpoint import load_checkpoint, save_checkpoint
from .optim import SGD, Adam, warmup_rsqrt
from .progress import ProgressBar
from .refinement import refine_model
from .trainer import Trainer, evaluate, fit, predict

__all__ = ["SGD", "Adam", "warmup_rsqrt", "Trainer", "fit", "evaluate", "predict",
           "refine_model", "ProgressBar", "save_checkpoint", "load_checkpoint"]
