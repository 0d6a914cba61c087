"""Exceptions raised by refode. Every message names the problem and the fix."""


class RefodeError(ValueError):
    """Base class of refode's input errors (a ``ValueError``)."""


class BasisError(RefodeError):
    """A basis family, size or interval that refode cannot build."""


class ShapeError(RefodeError):
    """Arrays whose shapes or dtypes do not fit together."""


class TableauError(RefodeError):
    """A Butcher tableau that is unknown or inconsistent."""


class FormatError(RefodeError):
    """A weight or golden file that does not follow refode's HDF5 format."""


class RefodeWarning(UserWarning):
    """A result refode computed as asked but that will not be usable as it stands
    (e.g. a compressed running variance that is negative at a stage, so evaluation
    divides by the square root of a negative number)."""
