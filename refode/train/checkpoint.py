"""HDF5 training checkpoints: model arrays, optimizer state, RNG state, progress.

Written atomically (a temporary file renamed onto the destination), so a run
killed while saving leaves the previous checkpoint intact. Layout::

    /                 attrs: format, version, epoch, level, rng_state (JSON),
                             optimizer (``kind``)
    /model            the model in the weight layout of ``docs/format.md``
                      (:func:`refode.io.weights.write_model`, as ``refode.save``)
    /optimizer/<key>  optimizer.state_arrays()

``epoch`` is the number of completed epochs; ``level`` the number of refinements
done. Arrays are stored at their dtype, so a restore is bitwise.
"""
import json

import h5py
import numpy as np

from .. import _io
from ..errors import FormatError
from ..io.read import read_model
from ..io.weights import write_model

#: identifies a refode training checkpoint.
FORMAT = "refode-train-checkpoint"
VERSION = 1


def _write_group(group, arrays):
    for name, arr in arrays.items():
        group.create_dataset(name, data=np.asarray(arr))


def _read_group(group):
    out = {}
    group.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def save_checkpoint(path, model, optimizer, rng, *, epoch, level):
    """Write a checkpoint of a training run to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
    model : ContinuousNet or ContinuousTagger
    optimizer : SGD or Adam
    rng : numpy.random.Generator
        The run's shuffling generator (its exact bit-generator state is stored).
    epoch : int
        Completed epochs.
    level : int
        Refinements done.
    """
    with _io.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "version": VERSION, "epoch": int(epoch),
                            "level": int(level), "optimizer": optimizer.kind,
                            "rng_state": json.dumps(rng.bit_generator.state)})
            write_model(f.create_group("model"), model)
            _write_group(f.create_group("optimizer"), optimizer.state_arrays())


def load_checkpoint(path, optimizer, rng):
    """Restore a run from the checkpoint at ``path``.

    Parameters
    ----------
    path : str or PathLike
    optimizer : SGD or Adam
        Of the class that wrote the checkpoint; its state is replaced.
    rng : numpy.random.Generator
        Its bit-generator state is replaced by the stored one.

    Returns
    -------
    model : ContinuousNet or ContinuousTagger
        The checkpoint's model (arrays bitwise equal to the saved ones).
    epoch, level : int
    """
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise FormatError(f"`path` {path!s} is not a refode training checkpoint")
        if f.attrs["optimizer"] != optimizer.kind:
            raise FormatError(f"checkpoint was written with {f.attrs['optimizer']}, "
                              f"`optimizer` is {optimizer.kind}: pass a {f.attrs['optimizer']}")
        model = read_model(f["model"], "/model")
        opt_arrays = _read_group(f["optimizer"])
        epoch, level = int(f.attrs["epoch"]), int(f.attrs["level"])
        rng_state = json.loads(f.attrs["rng_state"])
    optimizer.load_state_arrays(opt_arrays)
    rng.bit_generator.state = rng_state
    return model, epoch, level
