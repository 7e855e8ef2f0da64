"""How fast does the in-graph sampler compose, against the naive Python loop?

    .venv/bin/python benchmarks/bench_generate.py [--steps 128] [--repeats 3]

Uses the default model size (time 300,300, note 100,50, 78 notes) with untrained weights:
sampling costs the same whatever the weights. Reports time steps per second for

* `generate(..., xla=MODE)` at batch 1 and batch 8 for each XLA mode (batch 8 counts the steps
  of all eight pieces), best of `--repeats` runs after one warm-up run that traces and compiles;
* the naive loop `generate_reference` (Python loops over steps and notes calling the model's
  step API eagerly), the reference, over fewer steps because it is slow.

The last line is machine-readable:
`steps_per_second_b1=A steps_per_second_b8=B naive_steps_per_second=C` (the default mode).
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
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]

    model = BiaxialModel(seed=0)
    flops = flops_per_forward(model.get_config(), 1, 1)
    print(
        f"model: default size, {model.count_params():,} weights, "
        f"{flops / 1e6:.0f} MFLOP per step and piece (matmuls)"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    rates: dict[tuple[str, int], float] = {}
    for mode in modes:
        for batch_size in (1, 8):

            def run(mode=mode, batch_size=batch_size):
                generate.generate(model, args.steps, batch_size=batch_size, seed=0, xla=mode)

            started = time.perf_counter()
            run()  # trace + compile
            warmup = time.perf_counter() - started
            rate = steps_per_second(run, args.steps, batch_size, args.repeats)
            rates[mode, batch_size] = rate
            print(
                f"xla={mode:<5} batch {batch_size}: {rate:8.1f} steps/s "
                f"({rate * flops / 1e9:5.1f} GFLOP/s; first call {warmup:.1f} s)",
                flush=True,
            )

    def naive():
        generate.generate_reference(model, args.naive_steps, batch_size=1, seed=0)

    naive()  # first eager calls build kernels
    naive_rate = steps_per_second(naive, args.naive_steps, 1, 1)
    print(f"naive loop   batch 1: {naive_rate:8.1f} steps/s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    best = modes[0]
    print(f"speed-up of xla={best} batch 1 over the naive loop: {rates[best, 1] / naive_rate:.0f}x")
    print(
        f"steps_per_second_b1={rates[best, 1]:.1f} steps_per_second_b8={rates[best, 8]:.1f} "
        f"naive_steps_per_second={naive_rate:.2f}"
    )


if __name__ == "__main__":
    main()
