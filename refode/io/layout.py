"""The configuration of a model family and the array shapes it implies, from the models.

Each model class defines its architecture once (:mod:`refode.models.protocol`:
``FIELDS``, :meth:`~refode.models.protocol.Model.shapes`,
:attr:`~refode.models.protocol.Model.config`); this module reads the HDF5 layout of
``docs/format.md`` off them. Everything here is pure Python on the configuration
dictionary: shapes and parameter counts are derived *before* any array is allocated, so
that :func:`refode.load` can refuse malformed or absurdly large files without building
anything.
"""
from ..errors import RefodeError
from ..models import FAMILIES, ContinuousNet, ContinuousTagger, Model
from ..models.continuousnet import UNIT_INTERVAL  # noqa: F401  (re-exported)
from ..models._spec import count  # noqa: F401  (re-exported)

#: the two model families a file can hold (root attribute ``model``).
CONTINUOUS_NET, TAGGER = ContinuousNet.FAMILY, ContinuousTagger.FAMILY
MODELS = tuple(FAMILIES)

#: configuration keys of each family (format version 2) and the Python type of each
#: value (``float`` also admits a JSON integer).
CONFIG_KEYS = {family: {key: field.kind for key, field in cls.FIELDS.items()}
               for family, cls in FAMILIES.items()}
#: the allowed values of the keys that have a fixed set of them.
CONFIG_CHOICES = {family: {key: field.choices for key, field in cls.FIELDS.items()
                           if field.choices is not None}
                  for family, cls in FAMILIES.items()}
#: the architecture options added in format version 2, with the values that every
#: version-1 file means (its configuration lacks these keys).
VERSION_1_DEFAULTS = {
    CONTINUOUS_NET: {"head_activation": "relu", "padding": "symmetric", "rate_scale": 1.0,
                     "stitch_scale": 1.0},
    TAGGER: {"ln_eps": 1e-5},
}


def config_of(model):
    """The configuration dictionary (JSON-ready) of a model (its ``config``).

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger

    Returns
    -------
    family : str
    config : dict
    """
    if not isinstance(model, Model) or type(model).FAMILY not in FAMILIES:
        raise RefodeError(f"`model` must be a ContinuousNet or ContinuousTagger, got "
                          f"{type(model).__name__}")
    if not isinstance(model.scheme, str):
        raise RefodeError("`model.scheme` must be a registered tableau name to be saved, got "
                          f"{type(model.scheme).__name__}; rediscretize it with a named scheme")
    return type(model).FAMILY, model.config


def shapes(family, cfg):
    """Expected array shapes of a validated configuration (the family's ``shapes``).

    Returns
    -------
    params, state : dict name -> tuple of int
        Trainable arrays and running statistics (``"<layer>.<array>"`` names; arrays of
        an ODE-block carry the leading basis axis ``K``).
    blocks : dict block name -> [t0, t1]
        The ODE-blocks and their depth intervals.
    """
    return FAMILIES[family].shapes(cfg)


def block_of(name, blocks):
    """The ODE-block an array belongs to, or ``None`` for a depth-independent array."""
    layer = name.split(".", 1)[0]
    return layer if layer in blocks else None
