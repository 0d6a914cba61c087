"""Layers of the sentence tagger (:mod:`refode.models.tagger`), following
:mod:`refode.models._layers`, none with ``state``: :class:`TokenEmbedding`,
:class:`EncoderODEBlock`, :class:`LayerNorm`; the head is :class:`~.layers.Dense`.
"""
import numpy as np

from .. import kernels
from ..backend import add, contiguous, empty, empty_like, on_device
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

    def positions(self, length, like=None):
        """``(L, D)`` sinusoidal encodings in the weight's dtype (cached per length, and
        on the device when ``like`` is a device array)."""
        key = (length, on_device(like))
        if key not in self._positions:
            weight = self.params["weight"]
            out = empty((length, weight.shape[1]), weight.dtype, like)
            kernels.get("positions", self.backend)(out)
            self._positions[key] = out
        return self._positions[key]

    def forward(self, ids, train):
        """``ids`` (B, L) int64 -> ``(B, L, D)``; cache: the ids (where they came)."""
        ids = contiguous(ids)
        weight = contiguous(self.params["weight"], ids)
        out = empty((*ids.shape, weight.shape[1]), weight.dtype, ids)
        kernels.get("embedding", self.backend)(ids, weight, out)
        return add(out, self.positions(ids.shape[1], ids)), ids

    def backward(self, ids, dy):
        """``(dy, {"weight": ...})``: the ids (integers) have no cotangent, so ``dx`` is the
        embedded tokens' (the model's input gradient)."""
        weight = self.params["weight"]
        dweight = empty(weight.shape, weight.dtype, ids)
        kernels.get("embedding.embedding_vjp", self.backend)(
            contiguous(ids), contiguous(dy, ids), dweight)
        return dy, {"weight": dweight}


class LayerNorm(Layer):
    """Affine layer norm over the last axis (regulariser ``eps``); params ``gamma``, ``beta``."""

    def __init__(self, gamma, beta, backend="cpu", eps=LN_EPS):
        super().__init__(backend, {"gamma": gamma, "beta": beta})
        self.eps = float(eps)

    def forward(self, x, train):
        x = contiguous(x)
        y = empty_like(x)
        kernels.get("layernorm", self.backend)(x, contiguous(self.params["gamma"], x),
                                                contiguous(self.params["beta"], x), y, self.eps)
        return y, x

    def backward(self, x, dy):
        dx = empty_like(x)
        grads = {k: empty(v.shape, v.dtype, x) for k, v in self.params.items()}
        kernels.get("layernorm.layernorm_vjp", self.backend)(
            x, contiguous(self.params["gamma"], x), contiguous(dy, x), dx, grads["gamma"],
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
        return {"scheme": self.scheme, "n_steps": self.n_steps, "check_finite": False,
                "backend": self.rate.backend}

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
        """``(dx, {name: dL/dparams[name]})``; a training cache is used up (see
        :meth:`StatefulODEBlock.backward`)."""
        kind, payload = cache
        if kind == "vjp":
            return payload(dy, release=True)
        rate, x = payload
        return gradient(rate, x, self.params, self.basis, dy, **self._options())
