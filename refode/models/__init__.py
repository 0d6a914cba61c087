"""The paper's two model families, with hand-written gradients through the whole network."""
from .continuousnet import ContinuousNet

from .tagger import ContinuousTagger
from .transformer import PaperEncoderRate, PreLNEncoderRate

__all__ = ["ContinuousNet", "ContinuousTagger", "PaperEncoderRate", "PreLNEncoderRate"]
