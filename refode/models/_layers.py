"""The layer protocol of refode's models: explicit forward caches and hand-written backward.

A layer owns named arrays:

- ``params``: trainable arrays (depth-dependent ones carry the leading basis axis ``K``);
- ``state``: non-trainable arrays (batch-norm running statistics, also ``(K, ...)`` in
  an ODE-block).

and two methods:

- ``forward(x, train) -> (y, cache)``: ``cache`` holds what ``backward`` needs (a
  layer may take per-call keyword arguments too, e.g. the encoder ODE-block's ``mask``);
- ``backward(cache, dy) -> (dx, grads)``: ``grads`` maps every name of ``params``
  to ``dL/dparam`` (same shape).

In training mode ``forward`` may update ``state`` (running statistics); it never
changes ``params``. A model is a :class:`Sequential` of named layers; the names of
its arrays are ``"<layer>.<array>"``.
"""


class Layer:
    """Base class: no parameters, no state."""

    def __init__(self):
        self.params = {}
        self.state = {}

    def forward(self, x, train):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, cache, dy):  # pragma: no cover - interface
        raise NotImplementedError


class Sequential(Layer):
    """Named layers applied in order; arrays are exposed as ``"<layer>.<array>"``."""

    def __init__(self, layers):
        super().__init__()
        self.layers = dict(layers)

    def named(self, kind):
        """``{"<layer>.<array>": array}`` of ``kind`` (``"params"`` or ``"state"``)."""
        return {
            f"{lname}.{aname}": arr
            for lname, layer in self.layers.items()
            for aname, arr in getattr(layer, kind).items()
        }

    def forward(self, x, train):
        caches = []
        for layer in self.layers.values():
            x, cache = layer.forward(x, train)
            caches.append(cache)
        return x, caches

    def backward(self, caches, dy):
        grads = {}
        for (lname, layer), cache in zip(reversed(self.layers.items()), reversed(caches)):
            dy, g = layer.backward(cache, dy)
            grads.update({f"{lname}.{k}": v for k, v in g.items()})
        return dy, grads
