"""Training-step time of a HyperLSTM over a layer-norm LSTM (and a plain LSTM) of the same main size.

One step is forward + backward of a character model (``metahyper.lm.model.CharLM``) over a
``[seq_len, batch]`` window: ``logits.logsumexp(-1).mean().backward()``. The models are timed
interleaved (lstm, ln_lstm, hyper_lstm, lstm, ...) after one warm-up step each; each figure is the
median over ``--repeats`` and the ratios divide by the layer-norm LSTM's median from the same run.
Goal: HyperLSTM <= ~1.5x the layer-norm LSTM at the paper's size (N_h 1000, N_hhat 128, N_z 4).
``--profile`` adds where the HyperLSTM's time goes (torch profiler, top operators by self time).
Usage:
    python benchmarks/speed/hyperlstm.py [--hidden 1000] [--hyper 128] [--embedding 4] [--input 128]
        [--batch 32] [--seq-len 50] [--repeats 5] [--threads N] [--clock wall|cpu] [--profile]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from metahyper.lm.model import CharLM

VOCAB = 50  # PTB's character vocabulary size


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def step_time(model: CharLM, tokens: torch.Tensor, clock=time.perf_counter) -> float:
    """Seconds of one forward + backward pass on ``clock``."""
    model.zero_grad(set_to_none=True)
    start = clock()
    logits, _ = model(tokens)
    logits.logsumexp(dim=-1).mean().backward()
    if tokens.is_cuda:
        torch.cuda.synchronize()
    return clock() - start


def build(args: argparse.Namespace, device: torch.device) -> dict[str, CharLM]:
    """The three models, seeded alike, with dropout on (training mode) as in training."""
    models = {}
    for cell in ("lstm", "ln_lstm", "hyper_lstm"):
        torch.manual_seed(0)
        models[cell] = CharLM(VOCAB, cell, hidden_size=args.hidden, input_size=args.input, hyper_size=args.hyper,
                              embedding_size=args.embedding).to(device).train()
    return models


def profile_hyper(model: CharLM, tokens: torch.Tensor, rows: int = 12) -> str:
    """The HyperLSTM step's top operators by self time."""
    from torch.profiler import profile

    with profile() as prof:
        step_time(model, tokens)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def parse_args() -> argparse.Namespace:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--hyper", type=int, default=128)
    parser.add_argument("--embedding", type=int, default=4)
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="cpu: process CPU time, steadier on a shared machine (CPU only)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    models = build(args, device)
    tokens = torch.randint(0, VOCAB, (args.seq_len, args.batch), generator=torch.Generator().manual_seed(0)).to(device)
    times: dict[str, list[float]] = {name: [] for name in models}
    for name, model in models.items():
        step_time(model, tokens)  # warm-up
    for _ in range(args.repeats):
        for name, model in models.items():
            times[name].append(step_time(model, tokens, CLOCKS[args.clock]))
    medians = {name: statistics.median(t) for name, t in times.items()}
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {device}; N_h {args.hidden}, N_hhat {args.hyper}, N_z {args.embedding}, input {args.input}, "
          f"batch {args.batch}, seq_len {args.seq_len}, median of {args.repeats}, {args.clock} clock")
    for name, median in medians.items():
        print(f"{name:>11}: {median * 1000:9.1f} ms/step  {median / medians['ln_lstm']:5.2f}x ln_lstm  "
              f"{params[name]:>10,} parameters")
    if args.profile:
        print(profile_hyper(models["hyper_lstm"], tokens))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "median_s": medians, "params": params,
                       "ratio_to_ln_lstm": {n: m / medians["ln_lstm"] for n, m in medians.items()}}, handle, indent=2)


if __name__ == "__main__":
    main()
