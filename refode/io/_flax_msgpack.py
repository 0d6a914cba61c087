"""Flax's legacy msgpack checkpoints, read and written with ``msgpack`` and NumPy alone.

``flax.training.checkpoints.save_checkpoint`` (legacy, pre-Orbax) writes
``flax.serialization.msgpack_serialize(state_dict)``: a msgpack map whose keys are
strings (Python lists become maps with keys ``'0', '1', ...``) and whose array leaves
are msgpack extension objects:

- ``ExtType(1, msgpack([shape, dtype name, C-order bytes]))``: an ``ndarray``;
- ``ExtType(3, ...)``: a NumPy scalar, the same payload with shape ``[]``;
- ``ExtType(2, msgpack([real, imag]))``: a Python complex;
- arrays over 2**30 bytes are maps ``{'__msgpack_chunked_array__': True, 'shape':
  {'0': ...}, 'chunks': {'0': array, ...}}`` of flat pieces.

:func:`decode` returns nested ``dict``s whose leaves are read-only ``ndarray``s (or
plain msgpack values); every problem raises :class:`refode.errors.FormatError` naming
the file and the path inside the tree (``checkpoint_2: optimizer/target/Conv_0/kernel:
...``). :func:`encode` writes the same layout.
"""
import math

import msgpack
import numpy as np

from ..errors import FormatError

#: msgpack extension codes of ``flax.serialization``.
EXT_NDARRAY, EXT_COMPLEX, EXT_NPSCALAR = 1, 2, 3
#: marker key of an array that flax split into chunks.
CHUNKED = "__msgpack_chunked_array__"
#: refuse trees nested deeper than this (a Flax checkpoint has fewer than 10 levels).
MAX_DEPTH = 64
#: refuse arrays with more axes than this.
MAX_NDIM = 32
#: dtype kinds an array leaf may have: bool, signed/unsigned integer, float, complex.
NUMERIC_KINDS = "biufc"
#: exceptions msgpack raises on malformed bytes.
UNPACK_ERRORS = (ValueError, TypeError, OverflowError, msgpack.UnpackException)


def _fail(source, path, problem, fix):
    where = f"{source}: {path}" if path else f"{source}"
    raise FormatError(f"{where}: {problem}; {fix}")


def _join(path, key):
    return f"{path}/{key}" if path else str(key)


def _array(source, path, payload):
    """The ndarray of an ``EXT_NDARRAY`` / ``EXT_NPSCALAR`` payload."""
    damaged = "the checkpoint is damaged: restore it from the original run"
    try:
        parts = msgpack.unpackb(payload, raw=True)
    except UNPACK_ERRORS as exc:
        _fail(source, path, f"array payload is not valid msgpack ({exc})", damaged)
    if not (isinstance(parts, (list, tuple)) and len(parts) == 3):
        _fail(source, path, "array payload is not [shape, dtype, bytes]", damaged)
    shape, name, buffer = parts
    if (not isinstance(shape, (list, tuple)) or len(shape) > MAX_NDIM or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        _fail(source, path, f"array shape {shape!r:.60} is not a list of integers >= 0",
              damaged)
    try:
        dtype = np.dtype(name.decode("ascii") if isinstance(name, bytes) else name)
    except (TypeError, ValueError, UnicodeDecodeError):
        dtype = None
    if dtype is None or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        _fail(source, path, f"unsupported array dtype {name!r:.40}",
              "save the checkpoint with float32 or float64 arrays")
    if not isinstance(buffer, bytes) or len(buffer) != math.prod(shape) * dtype.itemsize:
        _fail(source, path, f"array of shape {list(shape)} {dtype} needs "
              f"{math.prod(shape) * dtype.itemsize} bytes, the payload has "
              f"{len(buffer) if isinstance(buffer, bytes) else 'no'} bytes", damaged)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def _unchunk(source, path, node):
    """The array of a chunked map (flax's ``_unchunk``)."""
    shape, chunks = node.get("shape"), node.get("chunks")
    if not (isinstance(shape, dict) and isinstance(chunks, dict)):
        _fail(source, path, "chunked array lacks `shape` or `chunks`",
              "the checkpoint is damaged: restore it from the original run")
    dims = [shape.get(str(i)) for i in range(len(shape))]
    pieces = [chunks.get(str(i)) for i in range(len(chunks))]
    if (not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in dims)
            or not all(isinstance(p, np.ndarray) and p.ndim == 1 for p in pieces)
            or not pieces or len({p.dtype for p in pieces}) != 1
            or sum(p.size for p in pieces) != math.prod(dims)):
        _fail(source, path, "chunked array pieces do not add up to its shape",
              "the checkpoint is damaged: restore it from the original run")
    return np.concatenate(pieces).reshape(dims)


def _complex(source, path, payload):
    try:
        real, imag = msgpack.unpackb(payload)
        return complex(float(real), float(imag))
    except (*UNPACK_ERRORS, ValueError, TypeError):
        _fail(source, path, "complex payload is not [real, imag]",
              "the checkpoint is damaged: restore it from the original run")


def _walk(source, path, node, depth):
    if depth > MAX_DEPTH:
        _fail(source, path, f"tree nested deeper than {MAX_DEPTH} levels",
              "this is not a Flax checkpoint")
    if isinstance(node, msgpack.ExtType):
        if node.code in (EXT_NDARRAY, EXT_NPSCALAR):
            return _array(source, path, node.data)
        if node.code == EXT_COMPLEX:
            return _complex(source, path, node.data)
        _fail(source, path, f"unknown msgpack extension type {node.code}",
              "this is not a Flax checkpoint")
    if isinstance(node, dict):
        out = {str(k): _walk(source, _join(path, k), v, depth + 1) for k, v in node.items()}
        return _unchunk(source, path, out) if out.get(CHUNKED) is True else out
    if isinstance(node, list):
        return [_walk(source, _join(path, i), v, depth + 1) for i, v in enumerate(node)]
    return node


def decode(raw, source):
    """The tree of a Flax msgpack checkpoint.

    Parameters
    ----------
    raw : bytes
        The file's contents.
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    dict
        Nested dicts (lists stay maps with keys ``'0', '1', ...``) whose array leaves
        are read-only ndarrays.

    Raises
    ------
    FormatError
        Truncated or trailing bytes, invalid msgpack, an array payload that does not
        match its shape and dtype, unknown extension types, absurd nesting.
    """
    try:
        tree = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except UNPACK_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        _fail(source, "", f"is not a complete msgpack checkpoint ({detail})",
              "the file is truncated or damaged: copy it again from the original run")
    if not isinstance(tree, dict):
        _fail(source, "", f"holds a msgpack {type(tree).__name__}, not a map",
              "this is not a Flax checkpoint")
    return _walk(source, "", tree, 0)


def _pack_leaf(value):
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        code = EXT_NDARRAY if isinstance(value, np.ndarray) else EXT_NPSCALAR
        payload = msgpack.packb([list(arr.shape), arr.dtype.name, arr.tobytes("C")],
                                use_bin_type=True)
        return msgpack.ExtType(code, payload)
    raise TypeError(f"cannot write a {type(value).__name__} into a Flax checkpoint")


def encode(tree):
    """msgpack bytes of ``tree`` (dicts with string keys, ndarray leaves) in Flax's layout."""
    return msgpack.packb(tree, default=_pack_leaf, use_bin_type=True, strict_types=True)


def flatten(tree, prefix=""):
    """``{"a/b/c": leaf}`` of a decoded tree (empty maps are kept as ``{}`` leaves)."""
    out = {}
    for key, value in tree.items():
        path = _join(prefix, key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out
