"""Made once by refode at commit 5ac7b89 (format version 1), before the architecture options."""
import numpy as np, refode
from refode.models import ContinuousNet, ContinuousTagger
from refode.io import golden
rng = np.random.default_rng(7)
net = ContinuousNet(in_channels=2, n_classes=3, widths=(2, 3), basis="fem_linear", n_basis=3,
                    scheme="midpoint", n_steps=2, seed=3)
x = rng.standard_normal((3, 2, 6, 6)); y = np.array([0, 2, 1])
net.loss_and_gradients(x, y)     # move the running statistics off their initial values
refode.save(net, "tests/data/v1_continuousnet.h5")
tag = ContinuousTagger(vocab_size=7, n_tags=3, width=4, heads=2, ffn=5, n_basis=2, seed=4)
ids = np.array([[1, 2, 3, 0], [4, 5, 6, 2]]); tags = np.array([[0, 1, 2, -100], [2, 1, 0, 1]])
refode.save(tag, "tests/data/v1_tagger.h5")
loss_n, g_n = net.loss_and_gradients(x, y, update_state=False)
loss_t, g_t = tag.loss_and_gradients(ids, tags)
out = {"net_x": x, "net_y": y, "net_eval_logits": net.forward(x, train=False),
       "net_train_logits": net.forward(x, train=True, update_state=False),
       "net_loss": np.float64(loss_n), "tag_ids": ids, "tag_tags": tags,
       "tag_logits": tag.forward(ids), "tag_loss": np.float64(loss_t)}
out.update({f"net_grad/{k}": v for k, v in g_n.items()})
out.update({f"tag_grad/{k}": v for k, v in g_t.items()})
np.savez("tests/data/v1_expected.npz", **out)
golden.write("tests/data/v1_golden_net.h5", refode.load("tests/data/v1_continuousnet.h5"), x, y,
             mode="train")
