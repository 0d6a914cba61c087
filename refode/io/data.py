"""Evaluation data for ``refode eval``: an ``.npz`` with ``x`` and ``y``, or an IDX pair.

- ``.npz``: ``x`` (ContinuousNet: float images ``(N, C, H, W)``; tagger: int token ids
  ``(B, L)``) and ``y`` (int classes ``(N,)``; tagger: int tags ``(B, L)``, ``-100`` at
  padding).
- IDX (MNIST format, gzip or not), ContinuousNet only: an image file (``uint8``,
  ``(N, rows, cols)``) and a label file (``uint8``, ``(N,)``). Images are scaled to
  ``[0, 1]`` and the gray channel is repeated to the model's input channels; no spatial
  resampling is needed (the head pools globally), so any image size is accepted.
"""
import gzip
import os

import numpy as np

from ..errors import FormatError

#: IDX magic: two zero bytes, the type code (0x08 = uint8), the number of dimensions.
IDX_UINT8 = 0x08
#: largest value of an 8-bit pixel.
PIXEL_MAX = 255.0
#: ranks of IDX image and label files.
IMAGE_RANK, LABEL_RANK = 3, 1
#: bytes of the IDX header before the dimensions.
IDX_HEADER = 4


def read_idx(path, rank):
    """A ``uint8`` array from an IDX file (``.gz`` decompressed) of the given rank."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise FormatError(f"{path}: cannot be read ({exc}); pass an IDX file") from None
    if len(raw) < IDX_HEADER or raw[0] or raw[1] or raw[2] != IDX_UINT8 or raw[3] != rank:
        raise FormatError(f"{path}: not an IDX uint8 file of rank {rank}; pass MNIST-format "
                          "images (rank 3) and labels (rank 1)")
    end = IDX_HEADER + 4 * rank
    dims = tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(IDX_HEADER, end, 4))
    if len(raw) != end + int(np.prod(dims, dtype=object)):
        raise FormatError(f"{path}: {len(raw) - end} data bytes for dimensions {dims}; the "
                          "file is truncated or damaged")
    return np.frombuffer(raw, dtype=np.uint8, offset=end).reshape(dims)


def load_data(paths, in_channels=None):
    """``(x, y)`` from one ``.npz`` or an (images, labels) IDX pair (see the module)."""
    if len(paths) == 1:
        try:
            with np.load(paths[0], allow_pickle=False) as npz:
                if "x" not in npz or "y" not in npz:
                    raise FormatError(f"{paths[0]}: needs arrays `x` and `y`; save them with "
                                      "np.savez(path, x=x, y=y)")
                return npz["x"], npz["y"]
        except (OSError, ValueError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"{paths[0]}: not a readable .npz ({exc}); pass an .npz with x "
                              "and y, or IMAGES LABELS in IDX format") from None
    if len(paths) != 2 or in_channels is None:
        raise FormatError("`--data` takes one .npz, or two IDX files (images labels) for a "
                          "ContinuousNet")
    images, labels = read_idx(paths[0], IMAGE_RANK), read_idx(paths[1], LABEL_RANK)
    if len(images) != len(labels):
        raise FormatError(f"{paths[1]}: {len(labels)} labels for {len(images)} images; pass "
                          "matching files")
    x = images[:, None].astype(np.float64) / PIXEL_MAX
    return np.repeat(x, in_channels, axis=1), labels.astype(np.int64)
