"""The numerical constants of the models, defined once.

Every module that needs one imports it from here; the kernels take them as defaults.
"""

#: variance regulariser of every batch norm: ``(x - mean) / sqrt(var + BN_EPS)``.
BN_EPS = 1e-5
#: layer-norm regulariser of refode's tagger (PyTorch's ``nn.LayerNorm`` default).
LN_EPS = 1e-5
#: layer-norm regulariser of Flax's ``nn.LayerNorm`` (the original code's tagger).
FLAX_LN_EPS = 1e-6
#: momentum of the running statistics, PyTorch's convention:
#: ``running = MOMENTUM * batch + (1 - MOMENTUM) * running`` (the paper's m = 0.9).
MOMENTUM = 0.1
#: weight of the previous running statistic, ``m = 1 - MOMENTUM`` (exactly 0.9 in float64).
KEEP = 1.0 - MOMENTUM
#: target of a position that is not scored (padding), PyTorch's ``ignore_index``.
IGNORE_INDEX = -100
#: token id of padding in the original code's tagger.
FLAX_PADDING_ID = 0
