"""Multilevel refinement: double ``K`` and ``N`` of every ODE-block exactly.

The structure comes from :meth:`ContinuousNet.rediscretize`; the coefficients
(weights and running statistics) are then set with :func:`refode.refine`, whose
matrices hold the exact split weights (piecewise constant: each piece copied into
its two halves; FEM: nodes kept, midpoints ``0.5 * (left + right)``). So
``theta(t)`` is unchanged: for piecewise constant bitwise (copies), for FEM exactly
in exact arithmetic (the midpoint values are rounded once). L2 projection onto the
refined space gives the same piecewise-constant coefficients but FEM ones off by
an ulp, hence the explicit refinement.
"""
from ..projection import refine
from ..models.stateful import StatefulODEBlock


def refine_model(model, *, steps_factor=2):
    """A new model with every ODE-block's basis refined once and ``N`` multiplied.

    Parameters
    ----------
    model : ContinuousNet
        Not modified.
    steps_factor : int
        ``N`` of the new model is ``steps_factor * N`` (2: the paper's doubling;
        1 keeps the discretisation, which leaves the network's function unchanged).

    Returns
    -------
    ContinuousNet
        ``K -> 2K`` (piecewise constant), ``K -> 2K - 1`` (FEM), ... see
        :meth:`refode.Basis.refine`.
    """
    fine, _ = model.basis.refine()
    new = model.rediscretize(n_basis=fine.n, n_steps=steps_factor * model.n_steps)
    for name, layer in model.net.layers.items():
        if isinstance(layer, StatefulODEBlock):
            target = new.net.layers[name]
            target.params = {k: refine(v, layer.basis)[1] for k, v in layer.params.items()}
            target.state = {k: refine(v, layer.basis)[1] for k, v in layer.state.items()}
    return new
