"""NumPy definitions of the kernels: slow, short, obviously correct."""
