"""Optimizers written in NumPy: SGD with momentum and Adam with warm-up.

Both follow PyTorch's update formulas (``torch.optim.SGD``, ``torch.optim.Adam``
without amsgrad), including **L2 weight decay added to the gradient**
(``g <- g + weight_decay * p``, the paper's setting), not decoupled (AdamW-style)
decay. Updates are applied in place to the arrays of a ``{name: array}`` dict (a
model's live :attr:`params`), in the sorted order of the names.

An optimizer's state is a dict of named arrays (:meth:`state_arrays`) plus scalar
counters, so a checkpoint can store it exactly and :meth:`load_state_arrays` can
restore it bitwise. :meth:`reset` forgets the moments (done at every refinement:
the parameter shapes change).
"""
import math

import numpy as np

from ..errors import RefodeError

#: PyTorch's defaults for Adam.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _check_nonnegative(value, name):
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise RefodeError(f"`{name}` must be a finite number >= 0, got {value!r}")
    return value


def _check_grads(params, grads):
    missing = sorted(set(params) ^ set(grads))
    if missing:
        raise RefodeError(f"`grads` must have the names of `params`; mismatch on {missing[:3]}")


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum and L2 weight decay.

    For every array ``p`` with gradient ``g``::

        g <- g + weight_decay * p        (L2 decay, PyTorch's ``weight_decay``)
        v <- momentum * v + g            (v starts at 0, so the first v is g)
        p <- p - lr * v

    Parameters
    ----------
    lr : float
        Learning rate (may be changed between steps, e.g. by a schedule).
    momentum : float
    weight_decay : float
    """

    #: name stored in checkpoints (subclasses keep it: their state is the same).
    kind = "SGD"

    def __init__(self, lr, momentum=0.9, weight_decay=0.0):
        self.lr = _check_nonnegative(lr, "lr")
        self.momentum = _check_nonnegative(momentum, "momentum")
        self.weight_decay = _check_nonnegative(weight_decay, "weight_decay")
        self.velocity = {}
        self.steps = 0

    def step(self, params, grads):
        """Update ``params`` (``{name: array}``) in place from ``grads``."""
        _check_grads(params, grads)
        for name in sorted(params):
            p, g = params[name], grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            v = self.velocity.get(name)
            v = g.copy() if v is None else v * self.momentum + g
            self.velocity[name] = v
            p -= self.lr * v
        self.steps += 1

    def reset(self):
        """Forget the momentum (at a refinement); the step count is kept."""
        self.velocity = {}

    def state_arrays(self):
        """``{"velocity/<name>": array, "steps": int64 scalar}``, copies."""
        out = {f"velocity/{k}": v.copy() for k, v in self.velocity.items()}
        out["steps"] = np.int64(self.steps)
        return out

    def load_state_arrays(self, arrays):
        """Restore what :meth:`state_arrays` returned."""
        self.velocity = {k[len("velocity/"):]: np.array(v) for k, v in arrays.items()
                         if k.startswith("velocity/")}
        self.steps = int(arrays["steps"])


def warmup_rsqrt(step, warmup):
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then ``1/sqrt`` decay.

    ``min(step / warmup, sqrt(warmup / step))`` for ``step = 1, 2, ...``: rises
    linearly to 1 at ``step = warmup`` and decays as ``step^(-1/2)`` after it.
    """
    return min(step / warmup, math.sqrt(warmup / step))


class Adam:
    """Adam with a linear warm-up and inverse-square-root decay of the learning rate.

    At step ``t = 1, 2, ...`` (counted over the whole run) the learning rate is
    ``lr * warmup_rsqrt(t, warmup)``; the moments and their bias correction count
    ``s`` restart at every :meth:`reset`::

        g <- g + weight_decay * p
        m <- b1 * m + (1 - b1) * g
        v <- b2 * v + (1 - b2) * g^2
        p <- p - (lr_t / (1 - b1^s)) * (m / (sqrt(v) / sqrt(1 - b2^s) + eps))

    (the order of operations of PyTorch's ``Adam`` step).

    Parameters
    ----------
    lr : float
        Peak learning rate.
    warmup : int
        Warm-up steps (>= 1).
    betas : (float, float)
    eps : float
    weight_decay : float
        L2 decay added to the gradient (not decoupled).
    """

    #: name stored in checkpoints (subclasses keep it: their state is the same).
    kind = "Adam"

    def __init__(self, lr, warmup=1, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=0.0):
        self.lr = _check_nonnegative(lr, "lr")
        if int(warmup) != warmup or warmup < 1:
            raise RefodeError(f"`warmup` must be an integer >= 1, got {warmup!r}")
        self.warmup = int(warmup)
        self.betas = tuple(float(b) for b in betas)
        self.eps = _check_nonnegative(eps, "eps")
        self.weight_decay = _check_nonnegative(weight_decay, "weight_decay")
        self.m, self.v = {}, {}
        self.steps = 0
        self.moment_steps = 0

    def current_lr(self):
        """The learning rate of the next step."""
        return self.lr * warmup_rsqrt(self.steps + 1, self.warmup)

    def step(self, params, grads):
        """Update ``params`` (``{name: array}``) in place from ``grads``."""
        _check_grads(params, grads)
        lr = self.current_lr()
        self.steps += 1
        self.moment_steps += 1
        b1, b2 = self.betas
        c1 = 1.0 - b1 ** self.moment_steps
        c2 = math.sqrt(1.0 - b2 ** self.moment_steps)
        for name in sorted(params):
            p, g = params[name], grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            m = self.m.get(name, np.zeros_like(p)) * b1 + (1.0 - b1) * g
            v = self.v.get(name, np.zeros_like(p)) * b2 + (1.0 - b2) * (g * g)
            self.m[name], self.v[name] = m, v
            p -= (lr / c1) * (m / (np.sqrt(v) / c2 + self.eps))

    def reset(self):
        """Forget the moments and restart the bias correction (at a refinement).

        The schedule's step count is kept.
        """
        self.m, self.v = {}, {}
        self.moment_steps = 0

    def state_arrays(self):
        """``{"m/<name>", "v/<name>": arrays, "steps", "moment_steps": int64}``, copies."""
        out = {f"m/{k}": a.copy() for k, a in self.m.items()}
        out.update({f"v/{k}": a.copy() for k, a in self.v.items()})
        out["steps"], out["moment_steps"] = np.int64(self.steps), np.int64(self.moment_steps)
        return out

    def load_state_arrays(self, arrays):
        """Restore what :meth:`state_arrays` returned."""
        self.m = {k[2:]: np.array(a) for k, a in arrays.items() if k.startswith("m/")}
        self.v = {k[2:]: np.array(a) for k, a in arrays.items() if k.startswith("v/")}
        self.steps, self.moment_steps = int(arrays["steps"]), int(arrays["moment_steps"])
