"""Example rates ``R(theta, h)`` for :func:`refode.odeint` and :func:`refode.gradient`.

A rate has ``forward(t, h, theta) -> dh/dt`` and a hand-written
``vjp(t, h, theta, a) -> (a_h, a_theta)``; the whole rate protocol, with its optional
parts (``theta_shapes``, ``forward_save``/``vjp_saved``, ``forward_stats``), is in
:mod:`refode.integrate.odeint`. The rates here are holomorphic and use
no complex conjugate, so complex-step derivatives (complex128 inputs) are exact.
"""
import numpy as np

from . import _validate
from .errors import RefodeError, ShapeError

#: default standard deviation of random coefficients, relative to ``1/sqrt(d)``.
DEFAULT_SCALE = 1.0


class DenseTanh:
    """``R(theta, h) = tanh(h W^T + b)`` with ``theta = {"W": (d, d), "b": (d,)}``.

    ``h`` has shape ``(batch, d)`` or ``(d,)``; float32, float64 or complex128.
    The rate does not depend on ``t`` other than through ``theta(t)``.
    """

    @staticmethod
    def shapes(d):
        """Shapes of the weights for width ``d``: ``{"W": (d, d), "b": (d,)}``."""
        return {"W": (d, d), "b": (d,)}

    def theta_shapes(self, h_shape):
        """The weights for a state of shape ``h_shape`` (``(batch, d)`` or ``(d,)``).

        Raises
        ------
        ShapeError
            ``h_shape`` is not 1-D or 2-D, or ``d`` is 0.
        """
        if len(h_shape) not in (1, 2) or h_shape[-1] < 1:
            raise ShapeError(f"`h0` has shape {tuple(h_shape)}; DenseTanh integrates states "
                             "(batch, d) or (d,) with d >= 1")
        return self.shapes(h_shape[-1])

    def forward(self, t, h, theta):
        """``tanh(h @ W.T + b)``, shape of ``h``."""
        return np.tanh(h @ theta["W"].T + theta["b"])

    def vjp(self, t, h, theta, a):
        """Vector-Jacobian products with ``a`` (shape of ``h``).

        With ``y = tanh(h W^T + b)`` and ``g = a * (1 - y^2)``:
        ``a_h = g W``, ``a_W = g^T h`` (summed over the batch), ``a_b = sum_batch g``.

        Returns
        -------
        a_h : shape of ``h``
        a_theta : {"W": (d, d), "b": (d,)}
        """
        y = self.forward(t, h, theta)
        g = a * (1 - y * y)
        d = h.shape[-1]
        g2, h2 = g.reshape(-1, d), h.reshape(-1, d)
        return g @ theta["W"], {"W": g2.T @ h2, "b": g2.sum(axis=0)}


def init_coefficients(basis, d, rng, scale=DEFAULT_SCALE):
    """Independent random coefficients of :class:`DenseTanh` for every basis function.

    Every ``theta_k`` gets its own draw (the original code drew all ``K`` copies
    from one key, so every piece started with the same weights).

    Parameters
    ----------
    basis : refode.Basis
    d : int
        Width.
    rng : numpy.random.Generator
    scale : float
        Standard deviation times ``sqrt(d)`` (``N(0, scale^2 / d)`` entries).

    Returns
    -------
    dict {"W": (K, d, d), "b": (K, d)} float64
    """
    d = _validate.positive_int(d, "d")
    if not isinstance(rng, np.random.Generator):
        raise RefodeError("`rng` must be a numpy.random.Generator, e.g. np.random.default_rng(0)")
    std = float(scale) / np.sqrt(d)
    return {
        name: std * rng.standard_normal((basis.n, *shape))
        for name, shape in DenseTanh.shapes(d).items()
    }
