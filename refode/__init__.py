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

# --- integration exports (refode/integrate) ---

__all__ = [
    "Basis", "basis", "families",
    "Tableau", "tableau", "tableaus",
    "RefodeError", "BasisError", "ShapeError", "TableauError", "FormatError",
]
