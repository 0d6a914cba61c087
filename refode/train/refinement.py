"""Multilevel refinement: double ``K`` and ``N`` of every ODE-block exactly.

Works for both model families: the ContinuousNet's stateful ODE-blocks (weights and
running statistics) and the tagger's encoder ODE-block (weights ``"ode.*"``).
The structure comes from the model's ``rediscretize``; the coefficients are then
set with :func:`refode.refine`, whose matrices hold the exact split weights
(piecewise constant: each piece copied into its two halves; FEM: nodes kept,
midpoints ``0.5 * (left + right)``). So ``theta(t)`` is unchanged: for piecewise
constant bitwise (copies), for FEM exactly in exact arithmetic (the midpoint values
are rounded once). L2 projection onto the refined space gives the same
piecewise-constant coefficients but FEM ones off by an ulp, hence the explicit
refinement.
"""
from ..errors import RefodeError
from ..models import Model
from ..projection import refine


def ode_blocks(model):
    """``{layer name: layer}`` of the ODE-blocks of ``model`` (the layers refinement moves).

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger

    Returns
    -------
    dict
        :meth:`refode.models.protocol.Model.ode_blocks`: ContinuousNet: its
        :class:`~refode.models.stateful.StatefulODEBlock` layers; ContinuousTagger:
        ``{"ode": EncoderODEBlock}``.
    """
    if not isinstance(model, Model):
        raise RefodeError(f"`model` must be a ContinuousNet or ContinuousTagger, got "
                          f"{type(model).__name__}")
    return model.ode_blocks()


def refine_model(model, *, steps_factor=2):
    """A new model with every ODE-block's basis refined once and ``N`` multiplied.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
        Not modified.
    steps_factor : int
        ``N`` of the new model is ``steps_factor * N`` (2: the paper's doubling;
        1 keeps the discretisation, which leaves the network's function unchanged).

    Returns
    -------
    ContinuousNet or ContinuousTagger
        ``K -> 2K`` (piecewise constant), ``K -> 2K - 1`` (FEM), ... see
        :meth:`refode.Basis.refine`.
    """
    blocks = ode_blocks(model)
    fine, _ = model.basis.refine()
    new = model.rediscretize(n_basis=fine.n, n_steps=steps_factor * model.n_steps)
    targets = ode_blocks(new)
    for name, layer in blocks.items():
        target = targets[name]
        target.params = {k: refine(v, layer.basis)[1] for k, v in layer.params.items()}
        target.state = {k: refine(v, layer.basis)[1] for k, v in layer.state.items()}
    return new
