"""Time one training step of the default biaxial model and compare it with this machine's matmuls.

    .venv/bin/python benchmarks/bench_train_step.py [--jit] [--repeats 5] [--batch 10 --steps 128]

1. Measures the float32 matmul rate of this machine in the same run: the median of several
   2048 x 2048 products, and of a product shaped like the model's biggest (all B*T*N rows of the
   second time layer's input projection, (99840, 300) @ (300, 1200) at the default size).
2. Times `model.train_on_batch` (forward, backward, Adam update; compiled once, as `fit` does)
   on a fixed batch of realistic random states: 10 segments x 128 steps x 78 notes, about four
   notes sounding, each held for a few steps.
3. Prints seconds per step, the achieved GFLOP/s (FLOPs counted analytically by
   `musicutils.model.flops_per_train_step`, 3x the forward matmuls) as a fraction of the
   best matmul rate seen (measured before and after the steps), the peak resident memory, and
   the load average while it ran.

Ends with one line: `train_step_seconds=S gflops=G peak_fraction=F`.
Reference on the issue's machine: the original Theano code ~32 s and 5.4 GB per step, a
straightforward Keras 3 version ~7.6 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from musicutils import model as model_module  # noqa: E402
from musicutils._tf import keras, tf  # noqa: E402
from musicutils.loops import time_call  # noqa: E402
from musicutils.model import BiaxialModel, BiaxialNLL, flops_per_train_step  # noqa: E402


def matmul_gflops(m: int, k: int, n: int, repeats: int) -> float:
    """Achieved GFLOP/s of a float32 (m, k) @ (k, n) tf.matmul (result forced to the host)."""
    a = tf.random.normal([m, k])
    b = tf.random.normal([k, n])
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    seconds = time_call(lambda: product().numpy(), repeats)
    return 2.0 * m * k * n / seconds / 1e9


def realistic_batch(batch: int, steps: int, n_notes: int, seed: int = 0) -> dict:
    """Random states that look like music: notes struck and held for 1-8 steps, ~4 at a time."""
    rng = np.random.default_rng(seed)
    state = np.zeros((batch, steps, n_notes, 2), np.float32)
    centre = n_notes // 2
    for b in range(batch):
        for _ in range(steps):  # ~4.5 steps long on average: about 4 notes sounding
            note = int(np.clip(rng.normal(centre, n_notes / 8), 0, n_notes - 1))
            start = int(rng.integers(0, steps))
            length = int(rng.integers(1, 9))
            state[b, start : start + length, note, 0] = 1
            state[b, start, note, 1] = 1
    beat = np.tile(np.arange(steps) % 16, (batch, 1)).astype(np.int32)
    return {"state": state, "beat": beat}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=10, help="segments per batch (10)")
    parser.add_argument("--steps", type=int, default=128, help="time steps per segment (128)")
    parser.add_argument("--repeats", type=int, default=5, help="timed training steps (5)")
    parser.add_argument("--jit", action="store_true", help="compile the step with XLA")
    parser.add_argument(
        "--gradient",
        choices=["fused", "autodiff"],
        default="fused",
        help="LSTM backward pass: hand-written (fused, default) or TensorFlow's autodiff",
    )
    parser.add_argument(
        "--no-xla-cells",
        action="store_true",
        help="plain TensorFlow gate arithmetic instead of the XLA-fused cells",
    )
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TF default)")
    args = parser.parse_args(argv)
    model_module.LSTM_GRADIENT = args.gradient
    model_module.XLA_CELLS = not args.no_xla_cells
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    load_before = os.getloadavg()[0]
    square = matmul_gflops(2048, 2048, 2048, repeats=7)
    keras.utils.set_random_seed(0)
    model = BiaxialModel()
    config = model.get_config()
    rows = args.batch * args.steps * model.n_notes
    shaped = matmul_gflops(rows, model.time_sizes[0], 4 * model.time_sizes[1], repeats=3)
    peak = max(square, shaped)
    print(
        f"matmul float32: 2048^3 {square:.1f} GFLOP/s; ({rows}, {model.time_sizes[0]}) @ "
        f"({model.time_sizes[0]}, {4 * model.time_sizes[1]}) {shaped:.1f} GFLOP/s"
    )

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=BiaxialNLL(), jit_compile=args.jit)
    inputs = realistic_batch(args.batch, args.steps, model.n_notes)
    x = {k: tf.constant(v) for k, v in inputs.items()}
    y = tf.constant(inputs["state"])
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    seconds = time_call(lambda: model.train_on_batch(x, y), args.repeats)
    flops = flops_per_train_step(config, args.batch, args.steps)
    gflops = flops / seconds / 1e9
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Measure the matmul rate again after the steps and keep the best: on a shared machine the
    # rate moves with other jobs, and the best one seen is the honest denominator.
    square_after = matmul_gflops(2048, 2048, 2048, repeats=7)
    peak = max(peak, square_after)
    print(f"matmul float32 after the steps: 2048^3 {square_after:.1f} GFLOP/s")
    load_after = os.getloadavg()[0]
    print(
        f"batch {args.batch} x {args.steps} steps x {model.n_notes} notes, "
        f"sizes time {model.time_sizes} note {model.note_sizes}, jit={args.jit}, "
        f"gradient={args.gradient}, xla_cells={model_module.XLA_CELLS}, "
        f"threads={tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"cpus={os.cpu_count()}"
    )
    print(
        f"first step (tracing) {first:.1f} s; median of {args.repeats}: {seconds:.2f} s/step, "
        f"{flops / 1e12:.3f} TFLOP/step -> {gflops:.1f} GFLOP/s = {gflops / peak:.0%} of the "
        f"matmul rate"
    )
    print(
        f"peak resident memory {peak_mb:.0f} MB; load average {load_before:.2f} before, "
        f"{load_after:.2f} after (the step uses all cores: other jobs slow it)"
    )
    print(f"train_step_seconds={seconds:.3f} gflops={gflops:.1f} peak_fraction={gflops / peak:.3f}")


if __name__ == "__main__":
    main()
