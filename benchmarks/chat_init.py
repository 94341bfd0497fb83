"""The chat model's initialisation, measured at equal steps on the built-in dialogues.

    python benchmarks/chat_init.py [--steps 1000]

Trains the default chat recipe twice from the same seed: once with the initialisation the chat model used
until 2026-12-01 (embedding N(0, 0.1), LSTM forget-gate bias 1) and once with PyTorch's own (what
rnnchat/chat/model.py uses now, like the language model), and prints the held-out loss at each
evaluation. Equal steps, not equal time: the two run at the same speed, so steps compare the starts alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, torch
from torch import nn
import rnnchat.chat.task as task_mod
from rnnchat import events as ev
from rnnchat.chat.model import Seq2Seq
from rnnchat.runs.kinds import assemble
from rnnchat.train.loop import Trainer

variant, steps = sys.argv[1], int(sys.argv[2])


class Old(Seq2Seq):
    def __init__(self, cfg):
        super().__init__(cfg)
        nn.init.normal_(self.embed.weight, std=0.1)
        for lstm in (*self.enc_fwd, *(self.enc_bwd or ()), self.decoder):
            for name, p in lstm.named_parameters():
                if name.startswith("bias_ih"):
                    n = p.shape[0] // 4
                    with torch.no_grad():
                        p[n:2 * n].fill_(1.0)


if variant == "old":
    task_mod.Seq2Seq = Old
model, train = assemble("chat", None, {}, {"max_steps": steps, "eval_every": 200, "sample_length": 0})
curve = [(e.step, e.val_loss) for e in Trainer("dialogues", model, train, name=variant).run()
         if isinstance(e, ev.Eval)]
print(json.dumps(curve))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RNNCHAT_CHECKPOINTS": tmp, "RNNCHAT_CACHE": os.path.join(tmp, "cache")}
        for variant, label in (("old", "N(0, 0.1) embedding, forget bias 1"), ("torch", "PyTorch's defaults")):
            out = subprocess.run([sys.executable, "-c", CHILD, variant, str(args.steps)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            curve = json.loads(out.strip().splitlines()[-1])
            best = min(v for _, v in curve)
            print(f"{label:<38} best {best:.4f} nats/token   " + "  ".join(f"{s}: {v:.3f}" for s, v in curve))


if __name__ == "__main__":
    main()
