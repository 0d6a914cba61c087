"""Converters between refode's HDF5 files / models and other frameworks.

- :mod:`refode.interop.torch`: PyTorch state dicts of ``validation/torch_impl``'s modules
  (both directions);
- :mod:`refode.interop.jax`: parameter and state trees (nested dicts of ``jax.Array``) of
  ``validation/jax_impl`` (both directions).

Neither torch nor jax is a dependency of refode: each submodule imports its framework
inside its functions, and importing :mod:`refode.interop` imports neither submodule.
"""
