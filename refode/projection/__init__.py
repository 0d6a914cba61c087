"""Changes of basis: exact mass matrices, L2 projection, interpolation, refinement, fits."""
from .fit import fit
from .mass import mass
from .project import interpolate, project, refine

__all__ = ["mass", "project", "interpolate", "refine", "fit"]
