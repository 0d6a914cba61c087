"""Both refode model families written as a PyTorch user would (nn.Module + autograd).

Written from ``docs/format.md`` (format version 2), without importing refode: the stage
grid comes from :mod:`validation.torch_impl.grid` (exact fractions, pure Python).

- :mod:`validation.torch_impl.continuousnet`: :class:`TorchContinuousNet` (stateful batch
  norm in depth, least-squares refit of the running statistics, both padding modes, head
  activation, residual scales);
- :mod:`validation.torch_impl.tagger`: :class:`TorchTagger` (attention with key padding
  mask, ``ln_eps``, both encoder rates).

State-dict keys are refode's array names with the PyTorch suffixes ``weight, bias,
running_mean, running_var`` for ``gamma, beta, mean, var`` (the table of
:mod:`refode.interop.torch`). This ``__init__`` imports nothing, so that the pure-Python
grid can be used without torch.
"""
