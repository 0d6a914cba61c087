"""The ContinuousNet workloads: W1 (a stateful conv ODE-block, forward + gradient), W4
(inference of the whole network) and M1 (peak memory of W1's gradient per checkpoint
strategy).

Each peer is built from the refode model's own weights through ``refode.interop``
(PyTorch: ``validation/torch_impl``, eager; JAX: ``validation/jax_impl``, jitted).
A builder returns a :class:`Case`: per library a callable to time and a function turning
its result into ``{name: ndarray}`` for the agreement check.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from .common import GRADIENT_FACTOR, block_run, conv_flops, stages


@dataclass
class Case:
    """One workload at one dtype, ready to check and time.

    ``runs``: ``{library: (fn, outputs)}``, ``fn()`` the timed call, ``outputs(result)``
    its arrays by name; ``compile_s``: seconds of ``jax.jit`` lowering + compilation;
    ``flops``: FLOPs of one call (None: not counted); ``skipped``: ``{library: why}``.
    """
    runs: dict = field(default_factory=dict)
    compile_s: dict = field(default_factory=dict)
    flops: float = None
    skipped: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def peers(want):
    """``{"pytorch": module or None, "jax": module or None}`` and why each is missing."""
    found, why = {}, {}
    for name, module in (("pytorch", "torch"), ("jax", "jax")):
        if name not in want:
            continue
        try:
            found[name] = __import__(module)
        except ImportError as err:
            why[name] = f"{module} not installed ({err})"
    return found, why


def conv_net(widths, k, n, scheme, dtype, backend, seed=0):
    from refode.models import ContinuousNet

    return ContinuousNet(in_channels=3, n_classes=10, widths=widths, n_basis=k, n_steps=n,
                         scheme=scheme, dtype=dtype, backend=backend, seed=seed)


def _torch_net(net, torch, device="cpu"):
    from refode.interop import torch as rt
    from validation.torch_impl.continuousnet import TorchContinuousNet

    _, cfg, dtype = rt.config(net)
    module = TorchContinuousNet(**cfg, dtype=dtype)
    module.load_state_dict(rt.state_dict(net))
    return module.to(device)


def _jax_trees(net):
    from refode.interop import jax as rj

    params, state = rj.trees(net)
    return params, state, rj.config(net)[1]


def _compiled(jax, fn, *args):
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


# --------------------------------------------------------------------------- W1
def w1_flops(batch, channels, side, n, scheme="euler"):
    """Forward + gradient FLOPs of W1: ``3 * N * s * 2 * conv_flops(B, H, W, C, C, 3)``."""
    return GRADIENT_FACTOR * n * stages(scheme) * 2 * conv_flops(batch, side, side,
                                                                  channels, channels, 3)


def w1_problem(dtype, size, backend):
    """W1's block 1 (Euler, piecewise constant), its input ``x`` (B, C, S, S) and the
    cotangent ``w`` (seeded), and the network: ``(net, block, x, w)``; ``size`` has "batch",
    "channels", "side", "k" (= K) and "n" (= N)."""
    b, c, s, k, n = (size[key] for key in ("batch", "channels", "side", "k", "n"))
    net = conv_net((c,), k, n, "euler", dtype, backend)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b, c, s, s)).astype(dtype)
    return net, net.ode_blocks()["block1"], x, rng.standard_normal(x.shape).astype(dtype)


def w1(dtype, size, backend, libraries, torch_device="cpu"):
    """W1 at ``size = {"batch", "channels", "side", "k", "n"}``: forward in training mode
    (batch statistics, running statistics refitted) + gradient of ``sum(w * h(T))`` with
    respect to the input and every coefficient array; PyTorch on ``torch_device``."""
    b, c, s, _, n = (size[key] for key in ("batch", "channels", "side", "k", "n"))
    net, block, x, w = w1_problem(dtype, size, backend)
    names = sorted(block.params)
    case = Case(flops=w1_flops(b, c, s, n), info={"size": size})

    case.runs["refode"] = block_run(block, x, w, names)
    found, case.skipped = peers(libraries)
    if "pytorch" in found:
        torch = found["pytorch"]
        from refode.interop.torch import torch_key

        tblock = _torch_net(net, torch, torch_device).block1.train()
        keys = {m: torch_key(f"block1.{m}")[len("block1."):] for m in names}
        tx, tw = torch.from_numpy(x).to(torch_device), torch.from_numpy(w).to(torch_device)

        def torch_step():
            for p in tblock.parameters():
                p.grad = None
            xx = tx.clone().requires_grad_(True)
            h = tblock(xx)
            (h * tw).sum().backward()
            return h, xx.grad, {m: tblock.get_parameter(keys[m]).grad for m in names}

        case.runs["pytorch"] = (torch_step, lambda r: {
            "h": r[0].detach().cpu().numpy(), "dx": r[1].cpu().numpy(),
            **{f"d[{m}]": r[2][m].cpu().numpy() for m in names}})
    if "jax" in found:
        jax = found["jax"]
        import jax.numpy as jnp
        from refode.interop.jax import flatten
        from validation.jax_impl.continuousnet import ode_block

        params, state, cfg = _jax_trees(net)
        p, st = params["block1"], state["block1"]

        def loss(xx, pp, ww):
            h, new_state = ode_block(xx, pp, st, cfg, True)
            return jnp.sum(h * ww), (h, new_state)

        grad = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
        jx, jw = jnp.asarray(x), jnp.asarray(w)
        compiled, case.compile_s["jax"] = _compiled(jax, grad, jx, p, jw)
        case.runs["jax"] = (lambda: compiled(jx, p, jw), lambda r: {
            "h": np.asarray(r[0][1][0]), "dx": np.asarray(r[1][0]),
            **{f"d[{m}]": v for m, v in flatten(r[1][1]).items()}})
    return case


# --------------------------------------------------------------------------- W4
def w4_flops(batch, side, in_channels, widths, n, scheme):
    """Inference FLOPs of the whole ContinuousNet (convolutions only; symmetric padding):
    stem ``conv(Cin -> w1)``; stitch 1: two ``3x3 w1 -> w1``; stitch ``j > 1``: ``3x3``
    stride 2 ``w_{j-1} -> w_j``, ``3x3 w_j -> w_j`` and the ``1x1`` stride-2 shortcut, at
    side ``S / 2^(j-1)``; each ODE-block ``N * s * 2`` convs ``3x3 w_j -> w_j``."""
    total = conv_flops(batch, side, side, in_channels, widths[0], 3)
    c_in, s = widths[0], side
    for j, c in enumerate(widths):
        if j:
            s = (s - 1) // 2 + 1
            total += conv_flops(batch, s, s, c_in, c, 3) + conv_flops(batch, s, s, c_in, c, 1)
        else:
            total += conv_flops(batch, s, s, c_in, c, 3)
        total += conv_flops(batch, s, s, c, c, 3)
        total += n * stages(scheme) * 2 * conv_flops(batch, s, s, c, c, 3)
        c_in = c
    return total


def w4(dtype, size, backend, libraries, torch_device="cpu"):
    """W4 at ``size = {"batch", "side", "widths", "k", "n", "scheme"}``: logits of the
    whole network in inference (running statistics); PyTorch on ``torch_device``."""
    b, s, widths, k, n, scheme = (size[key] for key in
                                  ("batch", "side", "widths", "k", "n", "scheme"))
    net = conv_net(tuple(widths), k, n, scheme, dtype, backend)
    x = np.random.default_rng(2).standard_normal((b, 3, s, s)).astype(dtype)
    case = Case(flops=w4_flops(b, s, 3, widths, n, scheme), info={"size": size})
    case.runs["refode"] = (lambda: net.forward(x, train=False), lambda r: {"logits": r})
    found, case.skipped = peers(libraries)
    if "pytorch" in found:
        torch = found["pytorch"]
        module = _torch_net(net, torch, torch_device).eval()
        tx = torch.from_numpy(x).to(torch_device)

        def torch_forward():
            with torch.no_grad():
                return module(tx)

        case.runs["pytorch"] = (torch_forward, lambda r: {"logits": r.cpu().numpy()})
    if "jax" in found:
        jax = found["jax"]
        import jax.numpy as jnp
        from validation.jax_impl.continuousnet import forward

        params, state, cfg = _jax_trees(net)
        jx = jnp.asarray(x)
        compiled, case.compile_s["jax"] = _compiled(
            jax, lambda p, st, xx: forward(p, st, xx, cfg, False)[0], params, state, jx)
        case.runs["jax"] = (lambda: compiled(params, state, jx),
                            lambda r: {"logits": np.asarray(r)})
    return case


# --------------------------------------------------------------------------- M1
def m1(dtype, size, backend, slots):
    """Peak traced memory (bytes above the inputs) of W1's forward + gradient at
    ``size["n"]`` steps with each checkpoint strategy, and of the forward alone.

    Measured with :mod:`tracemalloc` (NumPy's allocations are traced; Numba's inside
    compiled kernels are not, and refode's kernels write into preallocated outputs).
    The forward alone is ``refode.odeint`` of the block's training-mode rate: batch
    statistics, nothing kept for a reverse pass.
    """
    import tracemalloc

    from refode import odeint
    from refode.models.conv import ConvRate
    from refode.models.stateful import StatefulODEBlock

    _, base, x, w = w1_problem(dtype, size, backend)
    n = size["n"]
    rate = ConvRate(True, base.rate_scale, base.backend)
    calls = {"forward": lambda: odeint(rate, x, dict(base.params), base.basis,
                                       scheme=base.scheme, n_steps=n, check_finite=False)}
    for strategy in ("all", "steps", "binomial"):
        blk = StatefulODEBlock(base.basis, base.scheme, n, base.params, base.state,
                               checkpoint=strategy,
                               slots=slots if strategy == "binomial" else None,
                               backend=base.backend)

        def grad(blk=blk):
            h, cache = blk.forward(x, True)
            return blk.backward(cache, w)

        calls[f"gradient[{strategy}]"] = grad
    peaks, results = {}, {}
    for name, fn in calls.items():
        fn()  # compile outside the traced run
        tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        results[name] = fn()
        peaks[name] = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    grads = [results[f"gradient[{st}]"] for st in ("all", "steps", "binomial")]
    same = all(np.array_equal(g[0], grads[0][0]) and all(
        np.array_equal(g[1][m], grads[0][1][m]) for m in grads[0][1]) for g in grads)
    forward = peaks["forward"]
    return {"size": size, "binomial_slots": slots, "state_bytes": x.nbytes,
            "peak_bytes": peaks,
            "ratio_to_forward": {name: v / forward for name, v in peaks.items()
                                 if name != "forward"},
            "strategies_bitwise_equal": bool(same), "target": "gradient[binomial] <= 1.5x forward"}
