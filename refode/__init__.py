"""refode: the reference implementation of Stateful ODE-Nets with basis-function weights.

Public API (re-exported here explicitly):

- bases: :func:`basis`, :func:`families`, :class:`Basis`
- changes of basis: :func:`project`, :func:`interpolate`, :func:`refine`, :func:`fit`,
  :func:`mass`
- tableaus: :func:`tableau`, :func:`tableaus`, :class:`Tableau`
- the weights at a depth: :func:`theta` (the one definition of ``theta(t)``)
- integration: :func:`odeint`, :func:`gradient` (discrete and continuous adjoints),
  :class:`CheckpointStats`; :mod:`refode.integrate` also has ``vjp``
- rates and models: :mod:`refode.rates` (``DenseTanh``), :mod:`refode.models`
  (``ContinuousNet``, ``ContinuousTagger``)
- HDF5 weight files (``docs/format.md``): :func:`save`, :func:`load`; golden vectors in
  :mod:`refode.io.golden`
- errors: :class:`RefodeError` and its subclasses (all ``ValueError``)
"""
__version__ = "0.1.0"

from . import config  # noqa: F401  (first: sets OMP_WAIT_POLICY before any kernel runs)
from .bases import Basis, basis, families
from .errors import BasisError, FormatError, RefodeError, ShapeError, TableauError
from .integrate.tableau import Tableau, tableau, tableaus

# --- projection exports (refode/projection) ---
from .projection import fit, interpolate, mass, project, refine

# --- integration exports (refode/integrate) ---
from . import rates
from .integrate import CheckpointStats, gradient, odeint
from .integrate.weights import theta  # noqa: F401  (the weights at a depth, theta(t))

from . import models  # noqa: E402  (after the core it builds on)

# --- HDF5 interchange (refode/io) ---
from .io import load, save  # noqa: E402

__all__ = [
    "Basis", "basis", "families",
    "project", "interpolate", "refine", "fit", "mass",
    "Tableau", "tableau", "tableaus",
    "odeint", "gradient", "CheckpointStats", "theta", "rates", "models",
    "save", "load",
    "RefodeError", "BasisError", "ShapeError", "TableauError", "FormatError",
]
