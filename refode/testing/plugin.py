"""What the pytest plugin ``refode`` runs (its hooks live in the light module ``refode_pytest``).

The plugin registered by the ``pytest11`` entry point is :mod:`refode_pytest`, which imports
nothing heavy; its fixtures call the functions here on first use. The contract for an
implementation under test is documented in ``docs/testing.md``.
"""
import hashlib
import json
import pathlib

from .cases import GoldenCase, write_golden

_CASES = {}


def load_case(path):
    """The :class:`GoldenCase` of a golden file, read once per process."""
    key = str(pathlib.Path(path).resolve())
    if key not in _CASES:
        _CASES[key] = GoldenCase(path)
    return _CASES[key]


class GoldenFactory:
    """Writes golden files for configurations into a folder (the ``refode_golden_factory`` fixture).

    Parameters
    ----------
    folder : pathlib.Path
        Where the files go (a session temporary folder in the fixture).
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self._made = {}

    def __call__(self, config, mode="train", seed=0, batch=4, dtype="float64", model_seed=0,
                 name=None, rtol=None, atol=None):
        """Write the golden file of ``config`` (once per arguments) and return its path.

        Parameters
        ----------
        config : dict
            Model keyword arguments (:func:`refode.testing.build_model`; a ``"model"`` key
            or a ``"vocab_size"`` key selects the tagger).
        mode : {"train", "eval"}
        seed : int
            Seed of the inputs.
        batch : int
            Batch size of the inputs.
        dtype : {"float64", "float32"}
        model_seed : int
            Seed of the model's initialisation.
        name : str, optional
            File name (without ``.h5``); default a digest of the arguments.
        rtol, atol : float, optional
            Tolerances stored in the file.

        Returns
        -------
        pathlib.Path
        """
        args = json.dumps([config, mode, seed, batch, dtype, model_seed, rtol, atol],
                          sort_keys=True, default=str)
        if args not in self._made:
            stem = name or "golden-" + hashlib.sha256(args.encode()).hexdigest()[:12]
            path = self.folder / f"{stem}.h5"
            write_golden(path, dict(config), mode=mode, seed=seed, batch=batch, dtype=dtype,
                         model_seed=model_seed, rtol=rtol, atol=atol)
            self._made[args] = path
        return self._made[args]
