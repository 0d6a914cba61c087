"""Reference computations of a golden file: outputs, loss and every gradient.

One :meth:`~refode.models.protocol.Model.backprop` of the model gives them all,
including the gradient with respect to the input (ContinuousNet: the images; tagger:
the embedded tokens, ``embedding + positions``). The model's running statistics are
never changed; in training mode the statistics the step *would* store (stem, stitch
and head batch norms, and every ODE-block's refitted expansions) are returned as
``outputs/state/<name>``.
"""
import numpy as np

from .. import _validate, limits
from ..constants import IGNORE_INDEX
from ..errors import RefodeError
from ..models import FAMILIES
from . import layout

#: modes of a golden run: batch statistics (training) or running statistics.
MODES = ("train", "eval")
#: default image side of seeded ContinuousNet inputs and token length of tagger inputs.
IMAGE_SIDE, SENTENCE_LENGTH = 8, 6
#: names of the input gradient of each family inside ``/gradients/inputs``.
INPUT_GRADIENT = {family: cls.INPUT_GRADIENT for family, cls in FAMILIES.items()}
#: group of the updated running statistics of a training-mode golden file.
STATE = "outputs/state"


def check_seed(seed, name="seed"):
    """A seed of generated inputs: an integer >= 0 (numpy's rule), or a RefodeError."""
    return _validate.positive_int(seed, name, minimum=0)


def seeded_inputs(model, seed, batch):
    """Seeded inputs ``x`` and targets ``y`` fitting ``model``.

    ContinuousNet: standard normal images ``(batch, C, 8, 8)`` and classes. Tagger:
    token ids ``(batch, 6)`` avoiding the padding id, the last token of the first
    sentence padded (target ``-100``) so that the mask is exercised.
    """
    batch = limits.batch(batch, "batch")
    rng = np.random.default_rng(check_seed(seed))
    family, cfg = layout.config_of(model)
    if family == layout.CONTINUOUS_NET:
        x = rng.standard_normal((batch, cfg["in_channels"], IMAGE_SIDE, IMAGE_SIDE))
        return x.astype(model.dtype), rng.integers(0, cfg["n_classes"], batch)
    ids = rng.integers(0, cfg["vocab_size"], (batch, SENTENCE_LENGTH))
    ids[ids == model.padding_id] = (model.padding_id + 1) % cfg["vocab_size"]
    y = rng.integers(0, cfg["n_tags"], (batch, SENTENCE_LENGTH))
    ids[0, -1], y[0, -1] = model.padding_id, IGNORE_INDEX
    return ids, y


def compute(model, x, y, mode="train"):
    """Logits, loss, parameter gradients and input gradient of one batch.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
    x, y : inputs and targets as the model's ``loss_and_gradients`` takes them
        (validated first; at most :data:`refode.limits.MAX_BATCH` samples)
    mode : {"train", "eval"}
        Batch statistics (default) or running statistics; the state is not changed.

    Returns
    -------
    dict with ``"outputs/logits"``, ``"outputs/loss"`` (0-d), ``"gradients/params/<name>"``
    and ``"gradients/inputs/<x or embedded>"``, arrays of the model's dtype; in training
    mode also ``"outputs/state/<name>"``, the running statistics after the step (none
    for the tagger, which has no batch norm)
    """
    if mode not in MODES:
        raise RefodeError(f"unknown `mode` {mode!r}; choose one of {', '.join(MODES)}")
    family, _ = layout.config_of(model)
    if np.ndim(x) >= 1 and len(x) > limits.MAX_BATCH:
        raise RefodeError(f"`x` holds {len(x):,} samples, more than refode's cap of "
                          f"{limits.MAX_BATCH:,} for a golden batch; pass fewer")
    step = model.backprop(x, y, train=mode == "train", update_state=False)
    dt = model.dtype
    out = {"outputs/logits": np.asarray(step.logits, dt),
           "outputs/loss": np.asarray(step.loss, dt)}
    out.update({f"{STATE}/{k}": np.asarray(v, dt) for k, v in sorted((step.state or {}).items())})
    out.update({f"gradients/params/{k}": np.asarray(v, dt)
                for k, v in sorted(step.grads.items())})
    out[f"gradients/inputs/{INPUT_GRADIENT[family]}"] = np.asarray(step.input_gradient, dt)
    return out
