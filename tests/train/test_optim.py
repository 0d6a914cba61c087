"""Optimizers against steps computed by hand (exact values)."""
import math

import numpy as np
import pytest

from refode.errors import RefodeError
from refode.train import SGD, Adam, warmup_rsqrt


def test_sgd_momentum_weight_decay_three_steps_by_hand():
    # lr 0.5, momentum 0.5, weight decay 0.25: every intermediate value is a dyadic
    # rational, so the float64 results are exact.
    p = {"w": np.array([1.0, -2.0])}
    opt = SGD(lr=0.5, momentum=0.5, weight_decay=0.25)
    grads = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([2.0, -1.0])]
    # step 1: g = [1, 0] + 0.25 [1, -2] = [1.25, -0.5]; v = g; p = [0.375, -1.75]
    # step 2: g = [0, 1] + 0.25 [0.375, -1.75] = [0.09375, 0.5625]
    #         v = 0.5 [1.25, -0.5] + g = [0.71875, 0.3125]; p = [0.015625, -1.90625]
    # step 3: g = [2, -1] + 0.25 p = [2.00390625, -1.4765625]
    #         v = 0.5 v + g = [2.36328125, -1.3203125]; p = [-1.166015625, -1.24609375]
    expected = [[0.375, -1.75], [0.015625, -1.90625], [-1.166015625, -1.24609375]]
    for g, want in zip(grads, expected):
        opt.step(p, {"w": g})
        assert np.array_equal(p["w"], want)
    assert np.array_equal(opt.velocity["w"], [2.36328125, -1.3203125])
    assert opt.steps == 3


def test_sgd_reset_forgets_momentum():
    p = {"w": np.zeros(1)}
    opt = SGD(lr=1.0, momentum=0.5)
    opt.step(p, {"w": np.ones(1)})
    opt.reset()
    opt.step(p, {"w": np.ones(1)})
    assert np.array_equal(p["w"], [-2.0])  # without the reset: -1 - 1.5 = -2.5


def test_warmup_rsqrt_schedule():
    assert [warmup_rsqrt(t, 4) for t in (1, 2, 4)] == [0.25, 0.5, 1.0]
    assert warmup_rsqrt(16, 4) == 0.5
    assert warmup_rsqrt(9, 4) == math.sqrt(4 / 9)


def _adam_by_hand(p, grads, lr, warmup, b1, b2, eps, wd):
    """Scalar Adam written out step by step in Python floats."""
    m = v = 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * min(t / warmup, (warmup / t) ** 0.5)
        p = p - (lr_t / (1 - b1 ** t)) * (m / ((v ** 0.5) / (1 - b2 ** t) ** 0.5 + eps))
        out.append(p)
    return out


def test_adam_first_step_is_lr_times_sign():
    # With bias correction the first step is lr_1 * g / (|g| + eps): here lr_1 = 0.1 / 2.
    p = {"w": np.array([1.0, 1.0])}
    opt = Adam(lr=0.1, warmup=2, eps=0.0)
    opt.step(p, {"w": np.array([3.0, -0.5])})
    assert np.array_equal(p["w"], [1.0 - 0.05, 1.0 + 0.05])


def test_adam_three_steps_with_warmup_decay_and_weight_decay():
    grads = [0.5, -1.0, 2.0]
    lr, warmup, b1, b2, eps, wd = 0.01, 2, 0.9, 0.999, 1e-8, 0.1
    want = _adam_by_hand(1.5, grads, lr, warmup, b1, b2, eps, wd)
    p = {"w": np.array([1.5])}
    opt = Adam(lr=lr, warmup=warmup, betas=(b1, b2), eps=eps, weight_decay=wd)
    rates = []
    for g, w in zip(grads, want):
        rates.append(opt.current_lr())
        opt.step(p, {"w": np.array([g])})
        assert p["w"][0] == w  # same operations in the same order: exact
    assert rates == [0.005, 0.01, 0.01 * math.sqrt(2 / 3)]


def test_adam_reset_restarts_moments_not_schedule():
    p = {"w": np.array([0.0])}
    opt = Adam(lr=1.0, warmup=4, eps=0.0)
    for _ in range(3):
        opt.step(p, {"w": np.array([1.0])})
    opt.reset()
    before = p["w"].copy()
    opt.step(p, {"w": np.array([-2.0])})
    # fresh moments: a sign step of size lr_4 = 1.0 (the schedule kept counting)
    assert np.array_equal(p["w"], before + 1.0)
    assert opt.steps == 4 and opt.moment_steps == 1


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_state_arrays_round_trip(cls):
    rng = np.random.default_rng(0)
    p1 = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 2))}
    p2 = {k: v.copy() for k, v in p1.items()}
    g = [{k: rng.standard_normal(v.shape) for k, v in p1.items()} for _ in range(3)]
    o1, o2 = cls(0.1), cls(0.1)
    for gi in g[:2]:
        o1.step(p1, gi)
        o2.step(p2, gi)
    o3 = cls(0.1)
    o3.load_state_arrays(o2.state_arrays())
    o1.step(p1, g[2])
    o3.step(p2, g[2])
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)


def test_bad_arguments_name_the_argument():
    with pytest.raises(RefodeError, match="`lr`"):
        SGD(lr=-1.0)
    with pytest.raises(RefodeError, match="`warmup`"):
        Adam(lr=0.1, warmup=0)
    with pytest.raises(RefodeError, match="`grads`"):
        SGD(0.1).step({"a": np.zeros(1)}, {"b": np.zeros(1)})
