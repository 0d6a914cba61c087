"""Numba CPU kernels (``njit``, flags from :mod:`refode.config`)."""
