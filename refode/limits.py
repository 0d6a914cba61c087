"""The one set of size caps of refode, checked before anything is allocated.

Every place where a size enters (``refode.basis(family, n)``, ``odeint``/``gradient``
``n_steps``, the models' constructors and :meth:`rediscretize`, golden batches, the
command line's flags and the configuration of a file that is loaded or saved) checks
it against these constants, so that an absurd size fails at once with a message
naming the argument, instead of running for minutes or exhausting memory. A file
that :func:`refode.save` writes is therefore always one that :func:`refode.load` reads.
"""
from . import _validate
from .errors import BasisError, RefodeError

#: most basis functions ``K`` of a basis.
MAX_N_BASIS = 4096
#: most integration steps ``N`` of an ODE-block.
MAX_N_STEPS = 100_000
#: most scalars of a model (parameters + running statistics).
MAX_SCALARS = 100_000_000
#: most stages (widths) of a ContinuousNet.
MAX_STAGES = 64
#: most samples of a golden batch or of generated inputs (``refode golden --batch``).
MAX_BATCH = 65_536


def capped_int(value, name, cap, what, minimum=1, error=RefodeError):
    """``value`` as an int in ``[minimum, cap]``, or a RefodeError naming ``name``.

    Parameters
    ----------
    value : int
    name : str
        The argument, as the message names it (e.g. ``"n_steps"``, ``"--n-basis"``).
    cap : int
    what : str
        What the cap limits, for the message (``"integration steps"``).
    minimum : int
    error : type
        The RefodeError subclass raised above the cap.
    """
    value = _validate.positive_int(value, name, minimum)
    if value > cap:
        raise error(f"`{name}` is {value:,}, more {what} than refode's cap of {cap:,}; "
                          f"use at most {cap:,}")
    return value


def n_basis(value, name="n_basis"):
    """A number of basis functions in ``[1, MAX_N_BASIS]`` (a BasisError above it)."""
    return capped_int(value, name, MAX_N_BASIS, "basis functions", error=BasisError)


def n_steps(value, name="n_steps"):
    """A number of integration steps in ``[1, MAX_N_STEPS]``."""
    return capped_int(value, name, MAX_N_STEPS, "integration steps")


def batch(value, name="batch"):
    """A golden or generated batch size in ``[1, MAX_BATCH]``."""
    return capped_int(value, name, MAX_BATCH, "samples")


def scalars(total, what):
    """Refuse ``total`` scalars (an int) above :data:`MAX_SCALARS`; ``what`` names them."""
    if total > MAX_SCALARS:
        raise RefodeError(f"{what} would hold {total:.3g} scalars, more than refode's cap of "
                          f"{MAX_SCALARS:,}; use smaller sizes")
    return total
