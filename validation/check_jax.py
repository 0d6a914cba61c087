"""refode vs the functional JAX implementation of validation/jax_impl (both families).

Same cases as check_torch.py: every basis family, every tableau, several N, float64 and
float32; logits, loss, every parameter gradient, the input gradient and (ContinuousNet,
train mode) the running statistics after one step, in train and eval mode. The weights
travel through ``refode.interop.jax.trees``, the gradients come from ``jax.grad``
(eager: ``jax.jit`` of these unrolled graphs compiles slower than it runs). ``--quick``
runs 2 of check_torch's 7 quick cases (JAX's eager dispatch is slow).

    python validation/check_jax.py [--quick] [--progress]

Exit 1 if a row exceeds its tolerance (float64 1e-10, float32 2e-3, relative).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from refode.interop import jax as rj  # noqa: E402
from validation import peer_cases as pc  # noqa: E402
from validation.jax_impl import continuousnet as jnet  # noqa: E402
from validation.jax_impl import tagger as jtag  # noqa: E402


#: the rows of peer_cases.QUICK run by --quick (ContinuousNet float64, tagger float32).
QUICK_SUBSET = (0, 5)


def jax_arrays(model, x, y, mode):
    """The golden arrays computed by the JAX implementation from ``model``'s trees."""
    family, cfg, _ = rj.config(model)
    params, state = rj.trees(model)
    out = {}
    if family == "ContinuousNet":
        loss, logits, gp, gx, new_state = jnet.loss_and_grads(
            params, state, np.asarray(x), np.asarray(y), cfg, mode == "train")
        out["gradients/inputs/x"] = np.asarray(gx)
        if mode == "train":
            out.update({f"{pc.STATE}/{k}": v for k, v in rj.flatten(new_state).items()})
    else:
        loss, logits, gp, ge = jtag.loss_and_grads(params, np.asarray(x), np.asarray(y), cfg)
        out["gradients/inputs/embedded"] = np.asarray(ge)
    out["outputs/logits"], out["outputs/loss"] = np.asarray(logits), np.asarray(loss)
    out.update({f"gradients/params/{k}": v for k, v in rj.flatten(gp).items()})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset (CI): 2 cases")
    parser.add_argument("--progress", action="store_true",
                        help="one line per case on stderr (the full run takes hours)")
    args = parser.parse_args(argv)
    rows, start = [], time.perf_counter()
    todo = pc.cases(args.quick, subset=QUICK_SUBSET if args.quick else None)
    for done, case in enumerate(todo):
        if args.progress:
            print(f"[{done + 1}/{len(todo)} {time.perf_counter() - start:.0f} s] {case[:6]}",
                  file=sys.stderr, flush=True)
        model, x, y, modes, _ = pc.make(case)
        for mode in modes:
            ref = pc.reference(model, x, y, mode)
            err, worst, _ = pc.errors(ref, jax_arrays(model, x, y, mode))
            rows.append(dict(model=case[0], basis=case[1], K=case[2], scheme=case[3],
                             N=case[4], dtype=case[5], mode=mode, err=err, worst=worst))
    code = pc.report(rows, "refode vs validation/jax_impl (jax.grad)")
    print(f"({time.perf_counter() - start:.1f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
