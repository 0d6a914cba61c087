"""One explicit Runge-Kutta step and its exact reverse (vector-Jacobian product).

The arithmetic is fixed here, once, for every tableau (no per-method branches):

- stage states ``Y_i = h + dt * sum_{j<i} a_ij k_j`` summed over the non-zero
  ``a_ij`` in increasing ``j`` (``Y_i = h`` itself when there is none, so ``Y_0 = h``);
- ``h_next = h + dt * sum_i b_i k_i`` over the non-zero ``b_i`` in increasing ``i``;
- a weight equal to one is not multiplied (``1 * k`` would round identically, but
  it costs an array), so Euler is ``h + dt * k_0``: a ResNet block, bit for bit.

Every strategy of the discrete adjoint calls these functions, so forward
recomputation reproduces the stored stages bitwise. The arithmetic goes through
:func:`refode.backend.add`, :func:`refode.backend.scale` and :func:`refode.backend.axpy`
(``a + w * b``, each term added as ``axpy(acc, w, v)``): NumPy's ``+`` and ``*`` for host
arrays (``axpy`` in one pass with the same roundings), the elementwise CUDA kernels for
device arrays (which stay there).
"""
import functools

from ..backend import add, axpy, scale

#: a weight that is applied without multiplying.
UNIT = 1.0


def _term(weight, vector):
    return vector if weight == UNIT else scale(weight, vector)


def combination(terms):
    """``sum_q w_q * v_q`` over ``terms = [(w_q, v_q), ...]`` in their order.

    Parameters
    ----------
    terms : non-empty list of (float, ndarray)
        Python-float weights (they keep the dtype of float32 vectors).
    """
    weight, vector = terms[0]
    acc = _term(weight, vector)
    for weight, vector in terms[1:]:
        acc = add(acc, vector) if weight == UNIT else axpy(acc, weight, vector)
    return acc


def increment(h, dt, terms):
    """``h + dt * sum_q w_q v_q``; ``h`` itself when ``terms`` is empty."""
    if not terms:
        return h
    return axpy(h, dt, combination(terms))


@functools.lru_cache(maxsize=None)
def step_terms(tab):
    """The non-zero tableau entries as Python floats.

    Returns
    -------
    a_rows : tuple of ``s`` tuples of ``(j, a_ij)``, ``j < i``, increasing ``j``
    b_terms : tuple of ``(i, b_i)``, increasing ``i``
    a_cols : tuple of ``s`` tuples of ``(j, a_ji)``, ``j > i``, increasing ``j``
        (the transpose, used by the reverse step)
    """
    s = tab.stages
    a = tab.a
    a_rows = tuple(tuple((j, float(a[i][j])) for j in range(i) if a[i][j] != 0) for i in range(s))
    b_terms = tuple((i, float(b)) for i, b in enumerate(tab.b) if b != 0)
    a_cols = tuple(
        tuple((j, float(a[j][i])) for j in range(i + 1, s) if a[j][i] != 0) for i in range(s)
    )
    return a_rows, b_terms, a_cols


def rk_step(stage_rate, h, dt, tab, stages=None):
    """One step ``h_n -> h_{n+1}`` of tableau ``tab``.

    Parameters
    ----------
    stage_rate : callable ``(i, Y_i) -> k_i``
        The rate at stage ``i`` of this step (it knows the stage depth and weights).
    h : ndarray
        State at the step start.
    dt : float
        Signed step size.
    tab : refode.Tableau
    stages : list or None
        If a list, the stage states ``Y_0 .. Y_{s-1}`` are appended to it.

    Returns
    -------
    ndarray, like ``h``: the state at the step end.
    """
    a_rows, b_terms, _ = step_terms(tab)
    ks = []
    for row in a_rows:
        y = increment(h, dt, [(a, ks[j]) for j, a in row])
        if stages is not None:
            stages.append(y)
        ks.append(stage_rate(len(ks), y))
    return increment(h, dt, [(b, ks[i]) for i, b in b_terms])


def rk_step_vjp(stage_vjp, stages, dt, tab, lam):
    """Reverse one step: the exact gradient of :func:`rk_step`.

    For ``i = s-1 .. 0``: ``kbar_i = dt b_i lam + sum_{j>i} dt a_ji Ybar_j``, then
    ``(Ybar_i, thetabar_i) = R_vjp(t_i, Y_i, theta_i, kbar_i)``; finally
    ``lam_prev = lam + sum_i Ybar_i``. A stage whose ``kbar_i`` has no term does
    not influence ``h_{n+1}`` and is skipped.

    Parameters
    ----------
    stage_vjp : callable ``(i, Y_i, kbar_i) -> Ybar_i``
        Also accumulates the weight gradient of stage ``i`` (it knows theta_i).
    stages : list of ``s`` ndarrays, the stage states ``Y_i`` of the step
    dt : float
    tab : refode.Tableau
    lam : ndarray, ``dL/dh_{n+1}``

    Returns
    -------
    ndarray: ``dL/dh_n``.
    """
    _, b_terms, a_cols = step_terms(tab)
    b = dict(b_terms)
    ybar = [None] * tab.stages
    for i in reversed(range(tab.stages)):
        terms = [(dt * b[i], lam)] if i in b else []
        terms += [(dt * a, ybar[j]) for j, a in a_cols[i] if ybar[j] is not None]
        if terms:
            ybar[i] = stage_vjp(i, stages[i], combination(terms))
    acc = lam
    for y in ybar:
        if y is not None:
            acc = add(acc, y)
    return acc
