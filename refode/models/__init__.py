"""The paper's two model families, with hand-written gradients through the whole network."""
