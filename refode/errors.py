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
