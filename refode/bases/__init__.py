"""Basis families for depth-dependent weights, registered by name."""
from ._base import SIDES, Basis, basis, families, register

__all__ = ["SIDES", "Basis", "basis", "families", "register"]

from . import fourier, piecewise, polynomial  # noqa: E402,F401  (registers the families)
