"""refode vs the PyTorch implementation of validation/torch_impl (both families).

For every basis family, every tableau and several N, in float64 and float32: logits, loss,
every parameter gradient, the input gradient, and (ContinuousNet, train mode) the running
statistics after one training step, in train and eval mode. The weights travel through
``refode.interop.torch.state_dict``, the gradients come back by autograd.

    python validation/check_torch.py [--quick]

Prints one row per case with the worst array's relative error ``max|torch - refode| /
max|refode|``; exits 1 if a row exceeds its tolerance (float64 1e-10, float32 2e-3).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from refode.interop import torch as rt  # noqa: E402
from validation import peer_cases as pc  # noqa: E402
from validation.torch_impl.continuousnet import TorchContinuousNet  # noqa: E402
from validation.torch_impl.common import cross_entropy  # noqa: E402
from validation.torch_impl.tagger import TorchTagger  # noqa: E402


def torch_arrays(model, x, y, mode):
    """The golden arrays computed by the torch module loaded from ``model``."""
    family, cfg, dtype = rt.config(model)
    cls = TorchContinuousNet if family == "ContinuousNet" else TorchTagger
    net = cls(**cfg, dtype=dtype)
    net.load_state_dict(rt.state_dict(model), strict=True)
    net.train(mode == "train")
    if family == "ContinuousNet":
        xt = torch.tensor(x, requires_grad=True)
        logits = net(xt)
    else:
        xt = torch.from_numpy(np.asarray(x, np.int64))
        logits = net(xt)
    loss = cross_entropy(logits, torch.from_numpy(np.asarray(y, np.int64)))
    loss.backward()
    out = {"outputs/logits": logits.detach().numpy(), "outputs/loss": loss.detach().numpy()}
    for key, p in net.named_parameters():
        out[f"gradients/params/{rt.refode_name(key)}"] = p.grad.numpy()
    if family == "ContinuousNet":
        out["gradients/inputs/x"] = xt.grad.numpy()
        if mode == "train":
            out.update({f"{pc.STATE}/{k}": v for k, v in rt.arrays(net.state_dict()).items()
                        if k not in model.params})
    else:
        out["gradients/inputs/embedded"] = net.embedded.grad.numpy()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset (CI): 7 cases")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, start = [], time.perf_counter()
    for case in pc.cases(args.quick):
        model, x, y, modes, opts = pc.make(case)
        for mode in modes:
            ref = pc.reference(model, x, y, mode)
            err, worst, _ = pc.errors(ref, torch_arrays(model, x, y, mode))
            rows.append(dict(model=case[0], basis=case[1], K=case[2], scheme=case[3],
                             N=case[4], dtype=case[5], mode=mode, err=err, worst=worst))
    code = pc.report(rows, "refode vs validation/torch_impl (PyTorch autograd)")
    print(f"({time.perf_counter() - start:.1f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
