"""Fixtures shared by the kernel tests.

Numba compiles a kernel on its first call for each argument type; paying that in
the middle of a hypothesis run or of a timing makes tests slow and noisy. The
``warmup`` fixture runs a compiling call once per session and per key, so test
modules (of any op) can share it additively::

    @pytest.fixture(scope="module", autouse=True)
    def _compiled(warmup):
        warmup("dense", _compile_dense)
"""
import pytest

_WARMED = set()


def _warm_once(key, compile_fn):
    """Call ``compile_fn()`` the first time ``key`` is seen in this session."""
    if key not in _WARMED:
        compile_fn()
        _WARMED.add(key)


@pytest.fixture(scope="session")
def warmup():
    """``warmup(key, compile_fn)``: run ``compile_fn`` once per test session per ``key``."""
    return _warm_once
