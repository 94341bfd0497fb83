"""Chat quality against peers: the same pairs, the same held-out pairs, the same training time.

    python benchmarks/chat_quality.py [--corpus dialogues|shakespeare|both] [--minutes 5] [--seed 1337]
                                      [--eval-pairs 300] [--threads N] [--json]

Pairs come from the corpus as the chat task reads it (rnnchat.chat.pairs: extract_pairs, then the
project's own split_pairs with the chat defaults' settings), so every side trains on the same pairs and is
judged on the same held-out ones. Three sides, each in a fresh interpreter:

1. rnnchat: ``Trainer`` with the config ``runs.kinds.assemble`` gives task chat (what ``rnnchat train
   CORPUS --task chat --minutes M`` builds), its best checkpoint; greedy replies, sampled ones (the model's
   own, ``--candidates model``), and retrieve-and-rerank as ``rnnchat chat`` answers by default (``chat.retrieve.
   retrieve_and_rerank`` with its defaults: the replies of similar training prompts plus the model's beam-4
   replies, ordered by 30 × the similarity of the prompt each answered plus the anti-LM score with λ 0.5).
2. the PyTorch chatbot tutorial's recipe as a plain loop (``Tutorial`` below): a 2-layer bidirectional
   GRU encoder (directions summed) and a 2-layer GRU decoder, hidden 500, one embedding shared by both
   (each optimiser updates it, as there), Luong dot attention, dropout 0.1, Adam lr 1e-4 for the encoder
   and 5e-4 for the decoder, gradient clipping at 50 per half, full teacher forcing, batches of 64 pairs
   drawn at random, the loss summed over positions of the per-position mean; greedy replies. Changes,
   so both neural sides read the same tokens: rnnchat's subword tokenizer (the one its run trained on the
   training pairs) instead of the tutorial's word vocabulary, no word-count or length trimming, padding
   masked out of attention, and the teacher-forced decoder run over the whole reply in one call (the same
   sums as its step loop, since attention comes after the GRU).
3. retrieval: the reply of the most similar training prompt (``chat.retrieve.Retriever``: words and character
   n-grams, TF-IDF); and two controls that take one of the 8 nearest prompts' replies without regard to
   the prompt (a random one; the longest), to show how much of a chrF figure similarity earns and how
   much length alone does.

Figures on the held-out pairs: reply loss in nats per reply token and bits per character (neural sides;
``chat.evaluate.reply_loss`` for both models, fp32, every held-out pair), chrF of the replies against the
reference reply (sacrebleu), also over the held-out pairs whose prompt is not a training prompt (about
half of the built-in dialogues' held-out pairs are also training pairs word for word: the corpus repeats
conversations across its files), distinct-1/2, the share of the most common reply, and the replies to 20
everyday prompts side by side. rnnchat's time budget includes its own evaluations; the tutorial trains
the whole budget. rnnchat's best checkpoint is picked on its validation pairs, which are these held-out
pairs; its last checkpoint's loss is printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import answer, header, markdown_table, progress, run_side

EVERYDAY = ["Hello", "How are you?", "What is your name?", "Do you like music?", "Tell me a joke.",
            "What is a computer?", "Good morning", "Where are you from?", "What do you do?", "Are you a robot?",
            "What is your favorite color?", "Thank you", "Goodbye", "I am sad today.", "Can you help me?",
            "What is love?", "Do you have any hobbies?", "What time is it?", "Who made you?", "Do you like books?"]
MAX_TOKENS = 128         # reply limit on every side: 99% of training replies are shorter (115-125 tokens)
RETRIEVED = 8            # retrieved candidates for retrieve-and-rerank
BATCH = 64


def split(corpus: str, minutes: float, seed: int):
    """(model config, train config, training pairs, held-out pairs) as ``rnnchat train --task chat`` sees them."""
    from rnnchat.chat.data import split_of
    from rnnchat.runs.kinds import assemble
    from rnnchat.text.load import load_corpus

    model_cfg, cfg = assemble("chat", None, {}, {"minutes": minutes, "seed": seed})
    _, train, val = split_of(load_corpus(corpus), model_cfg, cfg)
    return model_cfg, cfg, train, val


def judged(val: list, n: int) -> list:
    """Up to n held-out pairs spread evenly over the split (whole scenes are held out, so not the first n)."""
    step = max(1, math.ceil(len(val) / max(1, n)))
    return val[::step][:n]


def held_out_loss(model, tokenizer, val: list) -> dict:
    from rnnchat.chat.data import PairArrays
    from rnnchat.chat.evaluate import reply_loss

    loss, tokens = reply_loss(model, PairArrays(tokenizer, val), BATCH)
    chars = sum(len(p.reply) + 1 for p in val)            # the end of each reply counts as a character
    return {"loss": loss, "bits_per_char": loss * tokens / chars / math.log(2), "tokens": tokens}


def figures(replies: list[str], refs: list[str]) -> dict:
    import sacrebleu

    from rnnchat.chat.evaluate import distinct_n

    top = Counter(replies).most_common(1)[0][1] if replies else 0
    return {"chrf": sacrebleu.corpus_chrf(replies, [refs]).score, "distinct1": distinct_n(replies, 1),
            "distinct2": distinct_n(replies, 2), "top_share": top / max(1, len(replies)),
            "mean_chars": sum(map(len, replies)) / max(1, len(replies))}


def unseen(train: list, pairs: list) -> list[bool]:
    """Whether each pair's prompt is new: the built-in dialogues repeat many conversations across files."""
    from rnnchat.chat.retrieve import normalise

    known = {normalise(p.prompt) for p in train}
    return [normalise(p.prompt) not in known for p in pairs]


def strategies(named: dict, pairs: list, train: list) -> dict:
    """{strategy: figures and a few examples} from {strategy: replies to pairs}; chrF also on new prompts."""
    import sacrebleu

    refs, new = [p.reply for p in pairs], unseen(train, pairs)
    out = {}
    for name, replies in named.items():
        fresh = [(r, ref) for r, ref, n in zip(replies, refs, new) if n]
        out[name] = {**figures(replies, refs), "examples": [[p.prompt, r] for p, r in zip(pairs[:5], replies)],
                     "chrf_unseen": sacrebleu.corpus_chrf([r for r, _ in fresh], [[f for _, f in fresh]]).score
                     if fresh else None}
    return out


# ---------------------------------------------------------------------------------------- side 1: rnnchat

def side_ours(args) -> dict:
    from rnnchat import events as ev
    from rnnchat.chat.config import DecodeConfig
    from rnnchat.chat.evaluate import strategy_replies
    from rnnchat.chat.pairs import Pair
    from rnnchat.chat.retrieve import Retriever, retrieve_and_rerank
    from rnnchat.runs.opened import open_chat_model
    from rnnchat.train.loop import Trainer

    model_cfg, cfg, train, val = split(args.corpus, args.minutes, args.seed)
    done, precision, t0 = None, None, time.perf_counter()
    start = {}
    if args.lm_first:
        start = language_model_first(args, model_cfg, cfg, train)
        cfg = dataclasses.replace(cfg, minutes=args.minutes - start["train_s"] / 60)
    label = "rnnchat LM first" if args.lm_first else "rnnchat"
    for e in Trainer(args.corpus, model_cfg, cfg, name=f"ours-{args.corpus}-{int(args.lm_first * 100)}",
                     init_from=start.get("run_dir")).run():
        if isinstance(e, ev.Started):
            precision = e.precision
        elif isinstance(e, ev.Eval):
            progress(f"  rnnchat {args.corpus}: step {e.step}, held-out {e.val_loss:.3f}, train {e.train_loss:.3f}")
        elif isinstance(e, ev.Warning):
            progress(f"  rnnchat {args.corpus}: {e.message}")
        elif isinstance(e, ev.Done):
            done = e
    wall = time.perf_counter() - t0
    run = open_chat_model(done.run_dir, "best")
    last = open_chat_model(done.run_dir, "last")
    retriever = Retriever(train)        # training pairs only (a chat also has the held-out ones): no held-out
    pairs = judged(val, args.eval_pairs)  # reply may answer its own prompt here
    everyday = [Pair((), p, "", -1) for p in EVERYDAY]

    def replies(chosen: list) -> dict:
        rerank = DecodeConfig(beam=4, rerank=0.5, max_length=MAX_TOKENS)
        ranked = [retrieve_and_rerank(run.model, run.tokenizer, retriever, p.prompt, p.context, RETRIEVED, rerank)
                  for p in chosen]
        return {f"{label} greedy": strategy_replies(run, chosen, DecodeConfig(temperature=0, max_length=MAX_TOKENS)),
                f"{label} sampled": strategy_replies(run, chosen, DecodeConfig(seed=args.seed, max_length=MAX_TOKENS)),
                f"{label} retrieve + rerank 0.5 (default)": [r[0].text if r else "" for r in ranked]}

    progress(f"  rnnchat {args.corpus}: replying to {len(pairs)} held-out prompts")
    return {"lm_first": start,
            "steps": done.step, "train_s": done.elapsed, "stopped": done.reason, "wall_s": wall, "precision": precision,
            "run_dir": done.run_dir, "parameters": run.model.num_parameters(),
            "tokenizer": f"{run.tokenizer.kind} {run.tokenizer.vocab_size}", "train_pairs": len(train),
            "val_pairs": len(val), "judged_pairs": len(pairs), "checkpoint": run.which,
            **held_out_loss(run.model, run.tokenizer, val),
            "loss_last": held_out_loss(last.model, last.tokenizer, val)["loss"],
            "strategies": strategies(replies(pairs), pairs, train), "everyday": replies(everyday), "speed": speed(run)}


def language_model_first(args, model_cfg, cfg, train: list) -> dict:
    """An LSTM language model of the chat model's shape, trained for ``lm_first`` of the budget on the
    training pairs' turns only (never a held-out reply), for the chat run to start from (--init-from)."""
    from rnnchat import events as ev
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig
    from rnnchat.text.corpus import Corpus, Document
    from rnnchat.train.loop import Trainer

    text = "\n\n".join(f"{p.prompt}\n{p.reply}" for p in train)
    corpus = Corpus(f"{args.corpus}-turns", f"benchmark:{args.corpus}-turns", (Document("turns", text),))
    lm = ModelConfig(cell="lstm", layers=model_cfg.layers, hidden=model_cfg.hidden, embed=model_cfg.embed)
    lm_cfg = TrainConfig(level=cfg.level, vocab_size=cfg.vocab_size, minutes=args.minutes * args.lm_first,
                         seed=args.seed)
    done = None
    for e in Trainer(corpus, lm, lm_cfg, name=f"lm-{args.corpus}").run():
        if isinstance(e, ev.Eval):
            progress(f"  rnnchat {args.corpus} LM first: step {e.step}, held-out {e.val_loss:.3f}")
        elif isinstance(e, ev.Done):
            done = e
    return {"run_dir": done.run_dir, "steps": done.step, "train_s": done.elapsed,
            "val_loss": done.best_val_loss}


def speed(run) -> dict:
    """First-token latency and the token rate after it, batch-1 decoding on the CPU as the chat command
    streams it (the rate after the first token: a reply's first token also pays for reading the prompt)."""
    from rnnchat.chat.config import DecodeConfig
    from rnnchat.chat.data import encode_source
    from rnnchat.chat.generate import decode_reply
    from rnnchat.events import Token

    out = {}
    for name, cfg in (("greedy", DecodeConfig(temperature=0)), ("sampled", DecodeConfig(seed=0))):
        firsts, later, seconds = [], 0, 0.0
        for rep in range(3):                                 # the first pass warms up; it is not counted
            for prompt in EVERYDAY:
                t0, first, n = time.perf_counter(), None, 0
                for e in decode_reply(run.model, run.tokenizer, encode_source(run.tokenizer, (), prompt), cfg):
                    if isinstance(e, Token):
                        n += 1
                        first = first if first is not None else time.perf_counter()
                end = time.perf_counter()
                if rep and first is not None:
                    firsts.append(first - t0)
                    later, seconds = later + n - 1, seconds + end - first
        out[name] = {"first_token_ms": 1e3 * statistics.median(firsts) if firsts else None,
                     "tokens_per_s": later / seconds if later and seconds else None, "tokens": later + len(firsts)}
    return out


# -------------------------------------------------------------------------------- side 2: the tutorial

def tutorial_model(vocab: int, hidden: int = 500, layers: int = 2, dropout: float = 0.1):
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Tutorial(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, hidden)
            self.encoder = nn.GRU(hidden, hidden, layers, dropout=dropout, bidirectional=True, batch_first=True)
            self.embedding_dropout = nn.Dropout(dropout)
            self.decoder = nn.GRU(hidden, hidden, layers, dropout=dropout, batch_first=True)
            self.concat = nn.Linear(2 * hidden, hidden)
            self.out = nn.Linear(hidden, vocab)

        def halves(self):
            """(encoder parameters, decoder parameters): the tutorial's two modules, both holding the embedding."""
            enc = [self.embedding.weight, *self.encoder.parameters()]
            return enc, [self.embedding.weight, *self.decoder.parameters(), *self.concat.parameters(),
                         *self.out.parameters()]

        def encode(self, src, lengths):
            packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, h = self.encoder(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
            mask = torch.arange(src.shape[1])[None, :] < lengths[:, None]
            # Directions summed; the decoder starts from the first `layers` final states, as the tutorial's does.
            return out[..., :hidden] + out[..., hidden:], mask, h[:layers]

        def decode(self, tgt_in, memory, mask, h):
            out, h = self.decoder(self.embedding_dropout(self.embedding(tgt_in)), h)
            scores = torch.bmm(out, memory.transpose(1, 2)).masked_fill(~mask[:, None, :], float("-inf"))
            context = torch.bmm(torch.softmax(scores, dim=-1), memory)
            return self.out(torch.tanh(self.concat(torch.cat([out, context], dim=-1)))), h

        def forward(self, src, lengths, tgt_in):
            memory, mask, h = self.encode(src, lengths)
            return self.decode(tgt_in, memory, mask, h)[0]

    return Tutorial()


def tutorial_loss(logits, tgt_out):
    """The tutorial's loss: at each reply position the mean NLL over the pairs still going, summed over positions."""
    import torch

    from rnnchat.chat.data import IGNORE

    mask = tgt_out != IGNORE
    nll = -torch.log_softmax(logits.float(), dim=-1).gather(-1, tgt_out.clamp(min=0)[..., None])[..., 0]
    per_position = (nll * mask).sum(0) / mask.sum(0).clamp(min=1)
    return per_position[mask.any(0)].sum(), float(nll.detach()[mask].mean())


def tutorial_greedy(model, tokenizer, pairs: list) -> list[str]:
    import numpy as np
    import torch

    from rnnchat.chat.data import PAD, encode_source
    from rnnchat.text.tokenizers import EOD, UNK

    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(pairs), BATCH):
            sources = [encode_source(tokenizer, p.context, p.prompt) for p in pairs[i:i + BATCH]]
            lengths = torch.tensor([len(s) for s in sources])
            src = torch.full((len(sources), int(lengths.max())), PAD, dtype=torch.int64)
            for b, s in enumerate(sources):
                src[b, :len(s)] = torch.from_numpy(np.asarray(s, dtype=np.int64))
            memory, mask, h = model.encode(src, lengths)
            token = torch.full((len(sources), 1), EOD, dtype=torch.int64)
            ids, alive = [[] for _ in sources], torch.ones(len(sources), dtype=torch.bool)
            for _ in range(MAX_TOKENS):
                logits, h = model.decode(token, memory, mask, h)
                logits[:, -1, UNK] = float("-inf")          # UNK is the padding id here, never a reply token
                token = logits[:, -1].argmax(-1, keepdim=True)
                for b in torch.nonzero(alive & (token[:, 0] != EOD)).flatten().tolist():
                    ids[b].append(int(token[b, 0]))
                alive &= token[:, 0] != EOD
                if not alive.any():
                    break
            out += [tokenizer.decode(r) for r in ids]
    return out


def side_tutorial(args) -> dict:
    import numpy as np
    import torch

    from rnnchat.chat.data import PairArrays
    from rnnchat.chat.pairs import Pair
    from rnnchat.text.tokenizers import load_tokenizer

    _, _, train, val = split(args.corpus, args.minutes, args.seed)
    tokenizer = load_tokenizer(Path(args.run_dir))            # rnnchat's run's tokenizer: the same tokens
    arrays = PairArrays(tokenizer, train)
    torch.manual_seed(args.seed)
    model = tutorial_model(tokenizer.vocab_size)
    enc, dec = model.halves()
    opt_enc, opt_dec = torch.optim.Adam(enc, lr=1e-4), torch.optim.Adam(dec, lr=5e-4)
    rng = np.random.default_rng(args.seed)
    steps, t0, shown, mean = 0, time.perf_counter(), 0.0, math.nan
    model.train()
    while time.perf_counter() - t0 < args.minutes * 60:
        src, lengths, tgt_in, tgt_out = arrays.batch(rng.integers(len(arrays), size=BATCH))
        loss, mean = tutorial_loss(model(src, lengths, tgt_in), tgt_out)
        opt_enc.zero_grad()
        opt_dec.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc, 50.0)
        torch.nn.utils.clip_grad_norm_(dec, 50.0)
        opt_enc.step()
        opt_dec.step()
        steps += 1
        if time.perf_counter() - shown > 30:
            shown = time.perf_counter()
            progress(f"  tutorial {args.corpus}: step {steps}, train loss {mean:.3f} nats/token")
    train_s = time.perf_counter() - t0
    pairs = judged(val, args.eval_pairs)
    progress(f"  tutorial {args.corpus}: {steps} steps; replying to {len(pairs)} held-out prompts")
    everyday = tutorial_greedy(model, tokenizer, [Pair((), p, "", -1) for p in EVERYDAY])
    return {"steps": steps, "train_s": train_s, "precision": "fp32", "train_loss": mean,
            "parameters": sum(p.numel() for p in model.parameters()), **held_out_loss(model, tokenizer, val),
            "strategies": strategies({"tutorial greedy": tutorial_greedy(model, tokenizer, pairs)}, pairs, train),
            "everyday": {"tutorial greedy": everyday}}


# --------------------------------------------------------------------------------- side 3: retrieval

def side_retrieval(args) -> dict:
    from rnnchat.chat.retrieve import Retriever

    _, _, train, val = split(args.corpus, args.minutes, args.seed)
    t0 = time.perf_counter()
    retriever = Retriever(train)        # training pairs only, as in side_ours
    build = time.perf_counter() - t0
    pairs = judged(val, args.eval_pairs)

    def reply(prompt: str) -> str:
        found = retriever.candidates(prompt, 1)
        return found[0] if found else ""

    t0 = time.perf_counter()
    replies = [reply(p.prompt) for p in pairs]
    query = (time.perf_counter() - t0) / max(1, len(pairs))
    known = {(p.prompt, p.reply) for p in train}
    # Controls: what chrF gives a reply of a similar prompt picked without regard to the prompt, by chance or
    # by length (chrF weighs recall twice: longer replies match more of a long reference).
    rng = random.Random(args.seed)
    nearest = [retriever.candidates(p.prompt, RETRIEVED) or [""] for p in pairs]
    named = {"retrieval": replies,
             f"control: a random one of the {RETRIEVED} nearest": [rng.choice(c) for c in nearest],
             f"control: the longest of the {RETRIEVED} nearest": [max(c, key=len) for c in nearest]}
    return {"build_s": build, "query_ms": 1e3 * query, "strategies": strategies(named, pairs, train),
            "unseen_prompts": sum(unseen(train, pairs)), "seen_pairs": sum((p.prompt, p.reply) in known for p in pairs),
            "everyday": {"retrieval": [reply(p) for p in EVERYDAY]}}


# ----------------------------------------------------------------------------------------------- report

def cell(text: str, width: int = 90) -> str:
    text = " / ".join(line.strip() for line in text.splitlines() if line.strip()) or "(empty)"
    return text if len(text) <= width else text[:width - 1] + "…"


def report(corpus: str, ours: dict, tutorial: dict, retrieval: dict, warm: dict | None = None) -> None:
    print(f"\n### {corpus}: {ours['train_pairs']:,} training pairs, {ours['val_pairs']:,} held out "
          f"(replies judged on {ours['judged_pairs']:,} of them)\n")
    n = ours["judged_pairs"]
    print(f"Of the {n:,} judged pairs, {retrieval['seen_pairs']:,} ({100 * retrieval['seen_pairs'] / n:.0f}%) are also "
          f"training pairs word for word and {n - retrieval['unseen_prompts']:,} have a prompt seen in training; "
          f"'chrF new prompts' is over the other {retrieval['unseen_prompts']:,}.\n")
    print(f"Both neural sides read the same {ours['tokenizer']} tokenizer (rnnchat's run trained it on the "
          "training pairs), so their losses per token and bits per character compare directly.\n")
    rows = []
    sides = ((ours, "rnnchat"), *(((warm, "rnnchat LM first"),) if warm else ()), (tutorial, "tutorial"),
             (retrieval, None))
    for side, label in sides:
        for name, f in side["strategies"].items():
            neural = label is not None
            rows.append([name, f"{side['steps']:,}" if neural else "", f"{side['train_s']:.0f}" if neural else "",
                         f"{side['loss']:.3f}" if neural else "", f"{side['bits_per_char']:.3f}" if neural else "",
                         f"{f['chrf']:.1f}", f"{f['chrf_unseen']:.1f}" if f["chrf_unseen"] is not None else "",
                         f"{f['distinct1']:.3f}", f"{f['distinct2']:.3f}",
                         f"{100 * f['top_share']:.1f}%", f"{f['mean_chars']:.0f}"])
    print(markdown_table(["side", "steps", "train s", "loss nats/token", "bits/char", "chrF", "chrF new prompts",
                          "distinct-1", "distinct-2", "top reply share", "mean chars"], rows))
    print(f"\nrnnchat: {ours['parameters']:,} parameters, {ours['precision']}, stopped by {ours['stopped']}, "
          f"checkpoint '{ours['checkpoint']}' "
          f"(its last checkpoint: {ours['loss_last']:.3f} nats/token); tutorial: {tutorial['parameters']:,} "
          f"parameters, fp32, training loss at the end {tutorial['train_loss']:.3f}. Retrieval index built in "
          f"{retrieval['build_s']:.2f} s, {retrieval['query_ms']:.2f} ms a query.\n")
    if warm:
        lm = warm["lm_first"]
        print(f"rnnchat LM first: a language model trained {lm['train_s']:.0f} s ({lm['steps']:,} steps, held-out "
              f"{lm['val_loss']:.3f} nats/token on the training turns' own split), then the chat run "
              f"{warm['train_s']:.0f} s from it ({warm['steps']:,} steps, stopped by {warm['stopped']}).\n")
    everyday = [ours["everyday"], *([warm["everyday"]] if warm else []), tutorial["everyday"], retrieval["everyday"]]
    names = [name for e in everyday for name in e]
    table = {k: v for e in everyday for k, v in e.items()}
    print(markdown_table(["prompt", *names],
                         [[p, *(cell(table[col][i]) for col in names)] for i, p in enumerate(EVERYDAY)]))
    print("\nrnnchat's decoding on the CPU, batch 1, the 20 prompts twice after a warm-up pass:\n")
    print(markdown_table(["decoding", "first token ms (median)", "tokens/s after the first", "tokens"],
                         [[k, f"{v['first_token_ms']:.1f}" if v["first_token_ms"] is not None else "",
                           f"{v['tokens_per_s']:,.0f}" if v["tokens_per_s"] else "", v["tokens"]]
                          for k, v in ours["speed"].items()]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="both", choices=("dialogues", "shakespeare", "both"))
    ap.add_argument("--minutes", type=float, default=5.0, help="training time per neural side (default 5)")
    ap.add_argument("--seed", type=int, default=1337, help="training seed; also the split's, as in rnnchat train")
    ap.add_argument("--eval-pairs", type=int, default=300, help="held-out prompts replied to (the loss uses all)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per side (0: torch's default)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the tables")
    ap.add_argument("--lm-first", type=float, default=0.0, metavar="SHARE",
                    help="also run rnnchat with a language model trained first for this share of its budget "
                         "(on the training turns), the chat run started from it (--init-from); e.g. 0.4")
    ap.add_argument("--side", choices=("ours", "tutorial", "retrieval"), help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        side = {"ours": side_ours, "tutorial": side_tutorial, "retrieval": side_retrieval}[args.side](args)
        answer({**side, "threads": torch.get_num_threads()})
        return
    if args.json:
        sys.stdout = sys.stderr                              # the header and tables go to stderr; stdout is JSON
    info = header("Chat quality against peers (benchmarks/chat_quality.py): the same pairs, held-out pairs and time")
    print(f"{args.minutes:g} minutes per neural side, seed {args.seed}")
    results = {"date": time.strftime("%Y-%m-%d"), "machine": info, "corpora": {}}
    corpora = ("dialogues", "shakespeare") if args.corpus == "both" else (args.corpus,)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"RNNCHAT_CHECKPOINTS": str(Path(tmp) / "runs"), "RNNCHAT_CACHE": str(Path(tmp) / "cache")}
        common = ["--minutes", str(args.minutes), "--seed", str(args.seed), "--eval-pairs", str(args.eval_pairs),
                  "--threads", str(args.threads)]
        for corpus in corpora:
            progress(f"{corpus}: rnnchat ({args.minutes:g} min)")
            ours = run_side(__file__, ["--side", "ours", "--corpus", corpus, *common], env)
            warm = None
            if args.lm_first:
                progress(f"{corpus}: rnnchat, language model first ({args.lm_first:.0%} of {args.minutes:g} min)")
                warm = run_side(__file__, ["--side", "ours", "--corpus", corpus, "--lm-first", str(args.lm_first),
                                           *common], env)
            progress(f"{corpus}: the tutorial's recipe ({args.minutes:g} min)")
            tutorial = run_side(__file__, ["--side", "tutorial", "--corpus", corpus, "--run-dir", ours["run_dir"],
                                           *common], env)
            progress(f"{corpus}: retrieval")
            retrieval = run_side(__file__, ["--side", "retrieval", "--corpus", corpus, *common], env)
            results["corpora"][corpus] = {"rnnchat": ours, "rnnchat_lm_first": warm, "tutorial": tutorial,
                                          "retrieval": retrieval}
            report(corpus, ours, tutorial, retrieval, warm)
    if args.json:
        sys.stdout = sys.__stdout__
        print(json.dumps(results))


if __name__ == "__main__":
    main()
