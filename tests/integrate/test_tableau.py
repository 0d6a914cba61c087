"""Butcher tableaus: order conditions hold exactly; bad tableaus are refused."""
from fractions import Fraction as F

import pytest

import refode
from refode.errors import TableauError

NAMES = ("euler", "midpoint", "heun", "ralston", "kutta3", "ssprk3", "rk4", "rk4_38")


def _order_conditions(t):
    """The order conditions up to order 4, as (order, residual) with exact fractions."""
    a, b, c = t.a, t.b, t.c
    s = range(t.stages)
    ac = [sum(a[i][j] * c[j] for j in s) for i in s]
    aac = [sum(a[i][j] * ac[j] for j in s) for i in s]
    return [
        (1, sum(b) - 1),
        (2, sum(b[i] * c[i] for i in s) - F(1, 2)),
        (3, sum(b[i] * c[i] ** 2 for i in s) - F(1, 3)),
        (3, sum(b[i] * ac[i] for i in s) - F(1, 6)),
        (4, sum(b[i] * c[i] ** 3 for i in s) - F(1, 4)),
        (4, sum(b[i] * c[i] * ac[i] for i in s) - F(1, 8)),
        (4, sum(b[i] * sum(a[i][j] * c[j] ** 2 for j in s) for i in s) - F(1, 12)),
        (4, sum(b[i] * aac[i] for i in s) - F(1, 24)),
    ]


def test_registry_has_the_eight_schemes():
    assert set(NAMES) <= set(refode.tableaus())


@pytest.mark.parametrize("name", NAMES)
def test_order_conditions_exact(name):
    t = refode.tableau(name)
    conditions = _order_conditions(t)
    for order, residual in conditions:
        if order <= t.order:
            assert residual == 0, (name, order)
    if t.order < 4:  # the claimed order is the highest: a condition of order + 1 fails
        assert any(res != 0 for order, res in conditions if order == t.order + 1)


@pytest.mark.parametrize("name", NAMES)
def test_float_arrays_match_fractions(name):
    t = refode.tableau(name)
    assert abs(t.B.sum() - 1.0) < 1e-15
    for i in range(t.stages):
        assert abs(t.A[i].sum() - t.C[i]) < 1e-15


def test_user_tableau_accepted_and_passed_through():
    t = refode.Tableau("my_midpoint", a=[[0, 0], [0.5, 0]], b=[0, 1], c=[0, 0.5], order=2)
    assert refode.tableau(t) is t
    assert t.stages == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(a=[[0, 0], [0.5, 0]], b=[0.5, 0.6], c=[0, 0.5]), "sum to 1.1"),
        (dict(a=[[0, 0], [0.4, 0]], b=[0, 1], c=[0, 0.5]), "row 1 of `a` sums to 0.4"),
        (dict(a=[[0.5, 0], [0.5, 0]], b=[0, 1], c=[0.5, 0.5]), "not explicit"),
        (dict(a=[[0]], b=[1], c=[0, 1]), r"must be \(1, 1\)"),
        (dict(a=[[0, 0], [1.5, 0]], b=[0, 1], c=[0, 1.5]), "outside"),
    ],
)
def test_bad_tableaus_refused(kwargs, message):
    with pytest.raises(TableauError, match=message):
        refode.Tableau("bad", order=1, **kwargs)


def test_unknown_scheme_names_the_choices():
    with pytest.raises(TableauError, match="unknown scheme 'rk5'.*rk4"):
        refode.tableau("rk5")
