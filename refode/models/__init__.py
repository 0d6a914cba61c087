"""The paper's two model families, with hand-written gradients through the whole network.

Both implement the protocol of :mod:`refode.models.protocol` (:class:`Model`).
"""
from .continuousnet import ContinuousNet
from .protocol import Model
from .tagger import ContinuousTagger
from .transformer import PaperEncoderRate, PreLNEncoderRate

#: the model classes by the family name files record (``/@model``).
FAMILIES = {cls.FAMILY: cls for cls in (ContinuousNet, ContinuousTagger)}

__all__ = ["ContinuousNet", "ContinuousTagger", "Model", "FAMILIES", "PaperEncoderRate",
           "PreLNEncoderRate"]
