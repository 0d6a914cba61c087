"""W2: the tagger's transformer-encoder ODE-block (pre-LN MHA + MLP), forward + gradient.

refode's block is the ``ode`` layer of a ``ContinuousTagger(rate="pre_ln")``; the
PyTorch peer is ``validation/torch_impl``'s ``EncoderBlock`` loaded with the tagger's
state dict, the JAX peer the rate of ``validation/jax_impl/tagger.py`` on the tagger's
``ode`` tree, jitted. The loss is ``sum(w * x(T))``; gradients with respect to the
block's input and every coefficient array.
"""
import numpy as np

from .common import GRADIENT_FACTOR, block_run, encoder_stage_flops, stages
from .conv import Case, _compiled, peers


def w2_flops(batch, length, width, ffn, n, scheme):
    """``3 * N * s * encoder_stage_flops(B, L, D, F)``."""
    return GRADIENT_FACTOR * n * stages(scheme) * encoder_stage_flops(batch, length, width, ffn)


def jax_encoder(ode, x, cfg):
    """``x(T)`` of the encoder ODE-block without padding (the rate of
    ``validation.jax_impl.tagger.encode``, without the final norm and head)."""
    from validation.jax_impl.common import integrate
    from validation.jax_impl.tagger import encoder_rate

    rate = encoder_rate(ode, cfg, None)
    return integrate(rate, x, cfg["basis"], cfg["n_basis"], cfg["scheme"], cfg["n_steps"],
                     tuple(cfg["interval"]))[0]


def w2(dtype, size, backend, libraries, torch_device="cpu"):
    """W2 at ``size = {"batch", "length", "width", "heads", "ffn", "k", "n", "scheme"}``;
    PyTorch on ``torch_device``."""
    from refode.models import ContinuousTagger

    b, length, d, heads, ffn, k, n, scheme = (size[key] for key in (
        "batch", "length", "width", "heads", "ffn", "k", "n", "scheme"))
    tagger = ContinuousTagger(vocab_size=16, n_tags=4, width=d, heads=heads, ffn=ffn,
                              n_basis=k, scheme=scheme, n_steps=n, rate="pre_ln",
                              dtype=dtype, backend=backend, seed=0)
    block = tagger.ode_blocks()["ode"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((b, length, d)).astype(dtype)
    w = rng.standard_normal(x.shape).astype(dtype)
    names = sorted(block.params)
    case = Case(flops=w2_flops(b, length, d, ffn, n, scheme),
                info={"size": size, "rate": "pre_ln"})

    case.runs["refode"] = block_run(block, x, w, names)
    found, case.skipped = peers(libraries)
    if "pytorch" in found:
        torch = found["pytorch"]
        from refode.interop import torch as rt
        from validation.torch_impl.tagger import TorchTagger

        _, cfg, tdtype = rt.config(tagger)
        module = TorchTagger(**cfg, dtype=tdtype)
        module.load_state_dict(rt.state_dict(tagger))
        enc = module.ode.to(torch_device)
        tx, tw = torch.from_numpy(x).to(torch_device), torch.from_numpy(w).to(torch_device)

        def torch_step():
            for p in enc.parameters():
                p.grad = None
            xx = tx.clone().requires_grad_(True)
            h = enc(xx, None)
            (h * tw).sum().backward()
            return h, xx.grad, {m: enc.get_parameter(m).grad for m in names}

        case.runs["pytorch"] = (torch_step, lambda r: {
            "h": r[0].detach().cpu().numpy(), "dx": r[1].cpu().numpy(),
            **{f"d[{m}]": r[2][m].cpu().numpy() for m in names}})
    if "jax" in found:
        jax = found["jax"]
        import jax.numpy as jnp
        from refode.interop import jax as rj

        params, _ = rj.trees(tagger)
        cfg = rj.config(tagger)[1]
        ode = params["ode"]

        def loss(xx, pp, ww):
            h = jax_encoder(pp, xx, cfg)
            return jnp.sum(h * ww), h

        grad = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
        jx, jw = jnp.asarray(x), jnp.asarray(w)
        compiled, case.compile_s["jax"] = _compiled(jax, grad, jx, ode, jw)
        case.runs["jax"] = (lambda: compiled(jx, ode, jw), lambda r: {
            "h": np.asarray(r[0][1]), "dx": np.asarray(r[1][0]),
            **{f"d[{m}]": np.asarray(v) for m, v in r[1][1].items()}})
    return case
