"""Workload W1: the conv rate unit in a stateful ODE-block, forward plus gradient.

Batch 32, 16 channels, 32x32 images, Euler, N = K = 16 piecewise constant, training
mode (batch statistics, running statistics updated), gradient of the scalar loss
``sum(w * h(T))`` with respect to the input and every coefficient array. refode and an
equivalent PyTorch CPU eager model (same weights, 2 threads each) run in the same
process; the script prints the median times and the ratio PyTorch time / refode time
for float64 and float32. Target: at least 1.0 in float64.

Usage: ``python benchmarks/w1.py [--repeats R] [--batch B] [--threads T]``
"""
import argparse
import os
import time

import numba
import numpy as np

from refode.bases import basis as make_basis
from refode.models.stateful import StatefulODEBlock, init_params, init_state

#: the workload's shape: batch, channels, image side, pieces = steps.
BATCH, CHANNELS, SIDE, K = 32, 16, 32, 16
EPS, MOMENTUM = 1e-5, 0.1


def refode_step(block, x, w):
    """One training step of the block: forward (state refit) + discrete adjoint."""
    h, backward = block.forward(x, train=True)
    dx, grads = block.backward(backward, w)
    return h, dx, grads


def torch_block(params, dtype):
    """PyTorch tensors of the same coefficients and a step function using them."""
    import torch
    import torch.nn.functional as F

    p = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in params.items()}
    running = {k: torch.zeros(K, CHANNELS, dtype=dtype) for k in ("m1", "m2")}
    running.update({k: torch.ones(K, CHANNELS, dtype=dtype) for k in ("v1", "v2")})

    def rate(h, k):
        y = F.batch_norm(h, running["m1"][k], running["v1"][k], p["bn1.gamma"][k],
                         p["bn1.beta"][k], training=True, momentum=MOMENTUM, eps=EPS)
        y = F.conv2d(F.relu(y), p["conv1.weight"][k], padding=1)
        y = F.batch_norm(y, running["m2"][k], running["v2"][k], p["bn2.gamma"][k],
                         p["bn2.beta"][k], training=True, momentum=MOMENTUM, eps=EPS)
        return F.conv2d(F.relu(y), p["conv2.weight"][k], padding=1)

    def step(x, w):
        for t in p.values():
            t.grad = None
        x = x.detach().requires_grad_(True)
        h = x
        for k in range(K):
            h = h + (1.0 / K) * rate(h, k)
        (h * w).sum().backward()
        return h, x.grad, {k: t.grad for k, t in p.items()}

    return step


def median_time(fn, repeats):
    fn()  # warm-up (compilation, allocator)
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(dtype, repeats, batch):
    import torch

    rng = np.random.default_rng(0)
    basis = make_basis("piecewise_constant", K)
    params = init_params(basis, CHANNELS, rng, dtype)
    block = StatefulODEBlock(basis, "euler", K, params, init_state(basis, CHANNELS, dtype))
    x = rng.standard_normal((batch, CHANNELS, SIDE, SIDE)).astype(dtype)
    w = rng.standard_normal(x.shape).astype(dtype)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tstep = torch_block(params, tdtype)
    tx, tw = torch.tensor(x), torch.tensor(w)
    # same computation: compare once before timing
    h_ref, dx_ref, _ = refode_step(block, x, w)
    h_pt, dx_pt, _ = tstep(tx, tw)
    tol = 1e-10 if dtype == np.float64 else 1e-3
    scale = np.abs(dx_pt.numpy()).max()
    assert np.abs(h_ref - h_pt.detach().numpy()).max() < tol * np.abs(h_ref).max(), "outputs differ"
    assert np.abs(dx_ref - dx_pt.numpy()).max() < tol * scale, "gradients differ"
    t_refode = median_time(lambda: refode_step(block, x, w), repeats)
    t_torch = median_time(lambda: tstep(tx, tw), repeats)
    return t_refode, t_torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    print(f"W1: batch {args.batch}, {CHANNELS} channels, {SIDE}x{SIDE}, Euler N = K = {K}, "
          f"forward + gradient; {args.threads} threads; load {os.getloadavg()[0]:.1f}; "
          f"numba layer {numba.config.THREADING_LAYER}")
    for dtype in (np.float64, np.float32):
        t_refode, t_torch = run(dtype, args.repeats, args.batch)
        print(f"{np.dtype(dtype).name:>8}: refode {1e3 * t_refode:8.1f} ms   "
              f"pytorch {1e3 * t_torch:8.1f} ms   ratio pytorch/refode {t_torch / t_refode:5.2f}")


if __name__ == "__main__":
    main()
