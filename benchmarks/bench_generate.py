"""How fast does the in-graph sampler compose, against the naive Python loop?

    .venv/bin/python benchmarks/bench_generate.py [--steps 128] [--repeats 3]

Uses the default model size (time 300,300, note 100,50, 78 notes) with untrained weights:
sampling costs the same whatever the weights. Reports time steps per second for

* `generate(..., xla=MODE, precision=P)` at batch 1 and batch 8 for each XLA mode and each
  precision (float32, bfloat16; batch 8 counts the steps of all eight pieces): one warm-up run
  each that traces and compiles, then `--repeats` rounds over all of them in turn (interleaved,
  so the machine's load moves them alike), best of the rounds;
* the naive loop `generate_reference` (Python loops over steps and notes calling the model's
  step API eagerly), the reference, over fewer steps because it is slow.

The last line is machine-readable, for the first mode:
`steps_per_second_b1=A steps_per_second_b8=B naive_steps_per_second=C` (float32, the default
precision) `bfloat16_steps_per_second_b1=D bfloat16_steps_per_second_b8=E`.
The load average is printed too: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicutils import generate  # noqa: E402
from musicutils.model import BiaxialModel, flops_per_forward  # noqa: E402


def steps_per_second(run, steps: int, batch_size: int, repeats: int) -> float:
    """Best-of-`repeats` rate of `run()` composing `steps` steps of `batch_size` pieces."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return steps * batch_size / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=128, help="steps per timed run")
    parser.add_argument("--naive-steps", type=int, default=6, help="steps of the naive loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--modes",
        default=",".join(generate.XLA_MODES),
        help="XLA modes to time (the first is reported on the last line)",
    )
    parser.add_argument(
        "--precisions", default="float32,bfloat16", help="precisions of the matrix products"
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    precisions = [p for p in args.precisions.split(",") if p]
    if "float32" not in precisions:
        parser.error("--precisions must include float32 (the last line reports it)")

    model = BiaxialModel(seed=0)
    flops = flops_per_forward(model.get_config(), 1, 1)
    print(
        f"model: default size, {model.count_params():,} weights, "
        f"{flops / 1e6:.0f} MFLOP per step and piece (matmuls)"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    configs = [(m, b, p) for m in modes for p in precisions for b in (1, 8)]
    runs, warmups = {}, {}
    for mode, batch_size, precision in configs:

        def run(mode=mode, batch_size=batch_size, precision=precision):
            generate.generate(
                model, args.steps, batch_size=batch_size, seed=0, xla=mode, precision=precision
            )

        started = time.perf_counter()
        run()  # trace + compile
        warmups[mode, batch_size, precision] = time.perf_counter() - started
        runs[mode, batch_size, precision] = run
    best = dict.fromkeys(configs, float("inf"))
    for _ in range(args.repeats):
        for config, run in runs.items():
            started = time.perf_counter()
            run()
            best[config] = min(best[config], time.perf_counter() - started)
    rates = {(m, b, p): args.steps * b / best[m, b, p] for m, b, p in configs}
    for mode, batch_size, precision in configs:
        rate = rates[mode, batch_size, precision]
        print(
            f"xla={mode:<5} {precision:<8} batch {batch_size}: {rate:8.1f} steps/s "
            f"({rate * flops / 1e9:5.1f} GFLOP/s; first call "
            f"{warmups[mode, batch_size, precision]:.1f} s)",
            flush=True,
        )

    def naive():
        generate.generate_reference(model, args.naive_steps, batch_size=1, seed=0)

    naive()  # first eager calls build kernels
    naive_rate = steps_per_second(naive, args.naive_steps, 1, 1)
    print(f"naive loop   batch 1: {naive_rate:8.1f} steps/s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    first = modes[0]
    print(
        f"speed-up of xla={first} float32 batch 1 over the naive loop: "
        f"{rates[first, 1, 'float32'] / naive_rate:.0f}x"
    )
    last = (
        f"steps_per_second_b1={rates[first, 1, 'float32']:.1f} "
        f"steps_per_second_b8={rates[first, 8, 'float32']:.1f} "
        f"naive_steps_per_second={naive_rate:.2f}"
    )
    if "bfloat16" in precisions:
        last += (
            f" bfloat16_steps_per_second_b1={rates[first, 1, 'bfloat16']:.1f}"
            f" bfloat16_steps_per_second_b8={rates[first, 8, 'bfloat16']:.1f}"
        )
    print(last)


if __name__ == "__main__":
    main()
