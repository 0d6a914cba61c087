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
changes ``params``. A model is a :class:`Sequential` of named layers.
"""
from ..backend import get as get_backend


class Layer:
    """Base class: ``params`` and ``state`` (empty unless given) and ``backend``, the
    :class:`refode.backend.Backend` (or its name, default ``"cpu"``) whose kernels run."""

    def __init__(self, backend="cpu", params=None, state=None):
        self.params = {} if params is None else params
        self.state = {} if state is None else state
        self.backend = get_backend(backend)

    def forward(self, x, train):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, cache, dy):  # pragma: no cover - interface
        raise NotImplementedError


class Sequential(Layer):
    """Named layers applied in order; ``params`` and ``state`` are the read-only views
    :meth:`named` of the layers' arrays as ``"<layer>.<array>"``."""

    def __init__(self, layers):
        self.layers = dict(layers)

    params = property(lambda self: self.named("params"))
    state = property(lambda self: self.named("state"))

    def leaves(self):
        """Every layer without sub-layers inside this one, in order."""
        for layer in self.layers.values():
            yield from (layer.leaves() if isinstance(layer, Sequential) else (layer,))

    def named(self, kind):
        """``{"<layer>.<array>": array}`` of ``kind`` (``"params"`` or ``"state"``)."""
        return {
            f"{lname}.{aname}": arr
            for lname, layer in self.layers.items()
            for aname, arr in getattr(layer, kind).items()
        }

    def forward(self, x, train, options=None):
        """``(y, caches)``; ``options``: ``{layer name: keyword arguments of its forward}``."""
        caches = []
        for name, layer in self.layers.items():
            x, cache = layer.forward(x, train, **(options or {}).get(name, {}))
            caches.append(cache)
        return x, caches

    def backward(self, caches, dy):
        grads = {}
        for (lname, layer), cache in zip(reversed(self.layers.items()), reversed(caches)):
            dy, g = layer.backward(cache, dy)
            grads.update({f"{lname}.{k}": v for k, v in g.items()})
        return dy, grads
