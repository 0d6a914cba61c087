"""refode: the reference implementation of Stateful ODE-Nets with basis-function weights.

Public API (re-exported here explicitly):

- bases: :func:`basis`, :func:`families`, :class:`Basis`
- tableaus: :func:`tableau`, :func:`tableaus`, :class:`Tableau`
"""
__version__ = "0.1.0"

from .bases import Basis, basis, families
from .errors import BasisError, FormatError, RefodeError, ShapeError, TableauError
from .integrate.tableau import Tableau, tableau, tableaus

# --- projection exports (refode/projection) ---
from .projection import fit, interpolate, mass, project, refine

# --- integration exports (refode/integrate) ---
from . import rates
from .integrate import CheckpointStats, gradient, odeint

__all__ = [
    "Basis", "basis", "families",
    "project", "interpolate", "refine", "fit", "mass",
    "Tableau", "tableau", "tableaus",
    "odeint", "gradient", "CheckpointStats", "rates",
    "RefodeError", "BasisError", "ShapeError", "TableauError", "FormatError",
]
