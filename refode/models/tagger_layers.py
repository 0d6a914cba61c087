"""Layers of the sentence tagger (:mod:`refode.models.tagger`), following
:mod:`refode.models._layers`, none with ``state``: :class:`TokenEmbedding`,
:class:`EncoderODEBlock`, :class:`LayerNorm`; the head is :class:`~.layers.Dense`.
"""
import numpy as np

from .. import kernels
from ..integrate import gradient, odeint, vjp
from ._layers import Layer
from .rediscretize import CHANGES
from .transformer import LN_EPS


class TokenEmbedding(Layer):
    """``ids (B, L) -> weight[ids] + P[:L]``: fixed sinusoidal positions ``P`` (not
    trainable) and **no** scaling of the embedding by ``sqrt(D)``.

    Parameters
    ----------
    weight : (V, D) ndarray
        Embedding table (trainable, ``params["weight"]``).
    backend : str or refode.backend.Backend
    """

    def __init__(self, weight, backend="cpu"):
        super().__init__(backend, {"weight": weight})
        self._positions = {}

    def positions(self, length):
        """``(L, D)`` sinusoidal encodings in the weight's dtype (cached per length)."""
        if length not in self._positions:
            out = np.empty((length, self.params["weight"].shape[1]),
                           dtype=self.params["weight"].dtype)
            kernels.get("positions", self.backend)(out)
            self._positions[length] = out
        return self._positions[length]

    def forward(self, ids, train):
        """``ids`` (B, L) int64 -> ``(B, L, D)``; cache: the ids."""
        weight = self.params["weight"]
        out = np.empty((*ids.shape, weight.shape[1]), dtype=weight.dtype)
        kernels.get("embedding", self.backend)(np.ascontiguousarray(ids), weight, out)
        return out + self.positions(ids.shape[1]), ids

    def backward(self, ids, dy):
        """``(dy, {"weight": ...})``: the ids (integers) have no cotangent, so ``dx`` is the
        embedded tokens' (the model's input gradient)."""
        dweight = np.empty_like(self.params["weight"])
        kernels.get("embedding.embedding_vjp", self.backend)(
            np.ascontiguousarray(ids), np.ascontiguousarray(dy), dweight)
        return dy, {"weight": dweight}


class LayerNorm(Layer):
    """Affine layer norm over the last axis (regulariser ``eps``); params ``gamma``, ``beta``."""

    def __init__(self, gamma, beta, backend="cpu", eps=LN_EPS):
        super().__init__(backend, {"gamma": gamma, "beta": beta})
        self.eps = float(eps)

    def forward(self, x, train):
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        kernels.get("layernorm", self.backend)(x, self.params["gamma"], self.params["beta"],
                                                y, self.eps)
        return y, x

    def backward(self, x, dy):
        dx = np.empty_like(x)
        grads = {k: np.empty_like(v) for k, v in self.params.items()}
        kernels.get("layernorm.layernorm_vjp", self.backend)(
            x, self.params["gamma"], np.ascontiguousarray(dy), dx, grads["gamma"],
            grads["beta"], self.eps)
        return dx, grads


class EncoderODEBlock(Layer):
    """The ODE-block ``x(T) = x(0) + int_0^T R(theta(t), x) dt`` of an encoder rate.

    Parameters
    ----------
    rate : refode.models.transformer rate
        The rate without a mask (:meth:`forward` builds one per call).
    coefficients : dict name -> ``(K, *shape)``
        ``params``: every weight of the rate with the leading basis axis.
    basis : refode.Basis
    scheme : str
        Tableau name.
    n_steps : int
    """

    def __init__(self, rate, coefficients, basis, scheme, n_steps):
        super().__init__(rate.backend, coefficients)
        self.rate, self.basis, self.scheme, self.n_steps = rate, basis, scheme, n_steps

    def _options(self):
        # the block's input is computed by the model (its own inputs are checked there)
        return {"scheme": self.scheme, "n_steps": self.n_steps, "check_finite": False}

    def forward(self, x, train, mask=None):
        """``x(0)`` (B, L, D) -> ``x(T)``.

        ``mask`` (B, L) bool, ``True`` at padded positions (or None: no padding), is
        the key padding mask of this call: ``rate.with_mask(mask)``, kept in the cache
        for :meth:`backward`, so nothing long-lived changes. In training the forward
        sweep keeps its stages for the reverse pass (:func:`refode.integrate.vjp`, one
        forward in all); in evaluation it keeps nothing, and a later :meth:`backward`
        recomputes the forward (:func:`refode.gradient`). Both give the same exact
        gradient.
        """
        rate = self.rate.with_mask(mask)
        if train:
            h, backward = vjp(rate, x, self.params, self.basis, **self._options())
            return h, ("vjp", backward)
        h = odeint(rate, x, self.params, self.basis, **self._options())
        return h, ("recompute", (rate, x))

    def rebased(self, basis, scheme, n_steps, method, stats="project"):
        """A new block with the weights moved onto ``basis`` by ``method`` (a key of
        :data:`~refode.models.rediscretize.CHANGES`); ``stats`` changes nothing (no state)."""
        move = CHANGES[method]
        return EncoderODEBlock(
            self.rate, {k: np.ascontiguousarray(move(v, self.basis, basis))
                        for k, v in self.params.items()}, basis, scheme, n_steps)

    def backward(self, cache, dy):
        kind, payload = cache
        if kind == "vjp":
            return payload(dy)
        rate, x = payload
        return gradient(rate, x, self.params, self.basis, dy, **self._options())
