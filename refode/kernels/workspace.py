"""Reusable scratch buffers for kernels that need temporaries (``conv2d``).

A kernel that needs a temporary array asks a :class:`Workspace` for it by name;
the buffer is allocated on the first request and handed back unchanged while the
shape and dtype stay the same. A caller that keeps one workspace per layer (or
per step loop) therefore allocates nothing after the first call. Kernels called
without a workspace make a throwaway one, which allocates every call.

A workspace is not thread safe: use one per concurrent caller.
"""
import numpy as np


class Workspace:
    """Named scratch buffers, reallocated only when their shape or dtype changes.

    Examples
    --------
    >>> ws = Workspace()
    >>> a = ws.buffer("cols", (4, 3), np.float64)
    >>> ws.buffer("cols", (4, 3), np.float64) is a
    True
    """

    def __init__(self, empty=np.empty):
        self._buffers = {}
        self._empty = empty  # allocates ``empty(shape, dtype=dtype)``: NumPy, or CUDA's

    def buffer(self, name, shape, dtype):
        """Return an uninitialised C-contiguous array ``name`` of ``shape`` and ``dtype``.

        Parameters
        ----------
        name : str
            Key of the buffer; distinct temporaries of one kernel use distinct names.
        shape : tuple of int
        dtype : numpy dtype

        Returns
        -------
        ndarray
            The cached buffer when it already has this shape and dtype, else a new one
            (which replaces the old one). Its contents are whatever the last user left.
        """
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._empty(shape, dtype=dtype)
            self._buffers[name] = buf
        return buf

    @property
    def buffers(self):
        """A new dict ``{name: array}`` of the buffers held now."""
        return dict(self._buffers)
