"""The one change of discretization of every model: :func:`rediscretize`.

Bound as :meth:`refode.models.protocol.Model.rediscretize`; each ODE-block moves its
own coefficients (``block.rebased``: :class:`StatefulODEBlock` moves weights and running
statistics, an :class:`EncoderODEBlock` its weights).
"""
import copy

from .. import _validate, limits
from ..bases import Basis, basis as make_basis
from ..errors import RefodeError
from ..integrate.tableau import tableau
from ..projection import interpolate, project

#: changes of basis: exact L2 projection or interpolation at the new basis' nodes.
CHANGES = {"projection": project, "interpolation": interpolate}
METHODS = tuple(CHANGES)
#: policies for the running statistics of the ODE-blocks.
STATS_POLICIES = ("project", "recalibrate", "positive")
#: samples per forward pass when statistics are recalibrated on data.
RECALIBRATION_BATCH = 128


def discretization(cls, basis, n_basis, scheme, n_steps, default_n, interval=None):
    """``(basis, scheme, n_steps)`` of a model of class ``cls``, validated.

    The basis is a :class:`refode.Basis` (``n_basis`` left out or equal to its size) or a
    family name with ``n_basis`` (``default_n`` when None) on ``interval``, and on
    ``cls.FIXED_INTERVAL`` if the family has one; ``n_steps`` is the basis size when None.
    """
    if isinstance(basis, Basis):
        if n_basis is not None and n_basis != basis.n:
            raise RefodeError(f"`n_basis` ({n_basis}) differs from the given basis' size "
                              f"{basis.n}; leave `n_basis` out")
        target = basis
    else:
        n = default_n if n_basis is None else n_basis
        target = make_basis(basis, n) if interval is None else make_basis(basis, n, interval)
    if cls.FIXED_INTERVAL is not None and target.interval != cls.FIXED_INTERVAL:
        raise RefodeError(f"a {cls.FAMILY}'s ODE-blocks integrate over "
                          f"{list(cls.FIXED_INTERVAL)}; pass a basis on that interval, got "
                          f"{list(target.interval)}")
    tableau(scheme)  # validates the name before any work
    return target, scheme, limits.n_steps(target.n if n_steps is None else n_steps)


def change_of_basis(method=None, change=None):
    """The name of the change of basis from ``change`` or its alias ``method``."""
    if method is not None and change is not None and method != change:
        raise RefodeError(f"`change` ({change!r:.40}) and its alias `method` ({method!r:.40}) "
                          "disagree; pass only `change`")
    key, value = ("change", change) if change is not None else ("method", method)
    value = "projection" if value is None else value
    if value not in CHANGES:
        raise RefodeError(f"unknown `{key}` {value!r:.40}; choose one of {', '.join(CHANGES)}")
    return value


def _check_stats(model, stats, data):
    if stats not in STATS_POLICIES:
        raise RefodeError(f"unknown `stats` {stats!r:.40}; choose one of "
                          f"{', '.join(STATS_POLICIES)}")
    if stats == "recalibrate" and not model.STATEFUL:
        raise RefodeError(f"a {model.FAMILY} has no running statistics to recalibrate; "
                          "leave `stats` at 'project'")
    if stats == "recalibrate" and data is None:
        raise RefodeError("`stats='recalibrate'` needs `data`: pass inputs (n, ...) to "
                          "re-estimate the running statistics on (e.g. images (n, C, H, W))")
    if stats != "recalibrate" and data is not None:
        raise RefodeError(f"`data` is only used by stats='recalibrate', got stats={stats!r}")


def rediscretize(self, basis=None, n_basis=None, scheme=None, n_steps=None, method=None, *,
                 change=None, stats="project", data=None, batch_size=RECALIBRATION_BATCH):
    """A new model with every depth-dependent array moved exactly onto a new basis.

    Compression (fewer basis functions), refinement (e.g. ``n_basis`` doubled on a
    ``piecewise_constant`` basis: exact, ``theta(t)`` unchanged) and graph shortening
    (``n_steps``) in one call. Weights *and* running statistics of every ODE-block move
    by ``change``; depth-independent arrays are copied; the model is not modified.

    Parameters
    ----------
    basis : str or refode.Basis, optional
        New family (on the current interval) or basis (default: the current family).
    n_basis, n_steps : int, optional
        New ``K`` and ``N`` (default: the current ones; ``n_basis`` must match a Basis).
    scheme : str, optional
        New tableau (default: the current one).
    method : {"projection", "interpolation"}, optional
        The older name of ``change`` (an alias).
    change : {"projection", "interpolation"}, optional
        Exact L2 projection (:func:`refode.project`, default) or interpolation at the
        new basis' nodes (:func:`refode.interpolate`).
    stats : {"project", "recalibrate", "positive"}
        Running statistics of the ODE-blocks after the change (a model without them
        takes ``"project"`` and ``"positive"`` alike): moved like the weights (default;
        a moved variance can become negative at a stage: warned); re-estimated on
        ``data`` in the new basis and grid, weights frozen, block by block (the model's
        ``recalibrate``); or means moved like the weights and variances in the log
        domain, which keeps them positive (:func:`refode.models.stateful.positive_variance`).
    data : array, or a tuple whose first entry is one
        Inputs of ``stats="recalibrate"`` (labels are not needed).
    batch_size : int
        Samples per forward pass of the recalibration.

    Returns
    -------
    A model of the same class.
    """
    how = change_of_basis(method, change)
    _check_stats(self, stats, data)
    _validate.model_arrays(self)
    target, new_scheme, new_steps = discretization(
        type(self), self.basis.family if basis is None else basis, n_basis,
        self.scheme if scheme is None else scheme, self.n_steps if n_steps is None else n_steps,
        self.basis.n, self.basis.interval)
    self.check_size({**self.config, "n_basis": target.n})   # sizes only: before any copy
    new = copy.deepcopy(self)
    new.basis, new.scheme, new.n_steps = target, new_scheme, new_steps
    for name, block in new.ode_blocks().items():
        new.network.layers[name] = block.rebased(target, new_scheme, new_steps, how, stats)
    if stats == "recalibrate":
        new.recalibrate(data, batch_size)
    return new
