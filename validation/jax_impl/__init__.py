"""Both refode model families in plain functional JAX (jax.numpy, jax.grad).

Written from ``docs/format.md`` (format version 2), without importing refode. The
parameters and running statistics are nested dicts (pytrees) keyed by the parts of
refode's array names (``"block1.conv1.weight"`` -> ``params["block1"]["conv1"]["weight"]``),
with refode's layouts (NCHW, OIHW, leading basis axis ``K``); ``refode.interop.jax``
converts files and models to and from these trees.

- :mod:`validation.jax_impl.continuousnet`: ``forward``, ``loss_and_grads`` (stateful
  batch norm, least-squares refit of the running statistics, both paddings, head
  activation, residual scales);
- :mod:`validation.jax_impl.tagger`: ``forward``, ``loss_and_grads`` (key padding mask,
  ``ln_eps``, both encoder rates).

float64 needs ``jax.config.update("jax_enable_x64", True)`` before use.
"""
