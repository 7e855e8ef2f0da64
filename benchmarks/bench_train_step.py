"""One training step of the default biaxial model: ours in float32 and bfloat16 against a peer.

    .venv/bin/python benchmarks/bench_train_step.py [--quick] [--repeats 5] [--batch 10 --steps 128]

In one run, on the same fixed batch of realistic random states (10 segments x 128 steps x 78
notes by default, about four notes sounding, each held for a few steps):

1. The matmul rates of this machine in float32 and bfloat16: a 2048^3 product and one shaped
   like the model's biggest (all B*T*N rows of the second time layer's input projection,
   (99840, 300) @ (300, 1200) at the default size), measured before and after the steps,
   interleaved; the best seen is the denominator of `peak_fraction`.
2. The training step (`train_on_batch`: forward, backward, Adam; compiled once, as `fit` does)
   of three variants, timed interleaved (peer, float32, bfloat16, peer, float32, ...) so that
   the machine's load moves all of them alike; the median of `--repeats` rounds each:
   - peer: the obvious Keras 3 biaxial model (benchmarks/peer_keras_biaxial.py: stock
     `keras.layers.LSTM` over both axes, same sizes, no feature building, no dropout, Adam);
   - float32 and bfloat16: ours (`BiaxialModel(precision=...)`, default dropout 0.5).
3. The peak resident memory of each variant alone: each runs in a child process (built,
   traced, two steps) whose peak resident memory (VmHWM) is read; TensorFlow's own import is
   part of it.

Prints the load average before and after (on a shared machine the times move with it), the
GFLOP/s of each step (FLOPs counted analytically, `musicutils.model.flops_per_train_step`), and
ends with one line for the default precision (`BiaxialModel`'s default, float32):
`train_step_seconds=S peer_seconds=P ratio=S/P peak_fraction=F precision=...`
(peak_fraction: the step's GFLOP/s over the best matmul rate seen in that precision).
`--quick`: batch 2 x 32 steps, 2 rounds, for a smoke test in a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from musicutils import model as model_module  # noqa: E402
from musicutils._tf import keras, tf  # noqa: E402
from musicutils.model import BiaxialModel, BiaxialNLL, flops_per_train_step  # noqa: E402

VARIANTS = ("peer", "float32", "bfloat16")
#: The precision `BiaxialModel` uses when none is given: the one the last line reports.
DEFAULT_PRECISION = BiaxialModel().precision


def matmul_seconds(m: int, k: int, n: int, dtype) -> callable:
    """A function that runs one (m, k) @ (k, n) product in `dtype` and waits for it."""
    a = tf.cast(tf.random.normal([m, k]), dtype)
    b = tf.cast(tf.random.normal([k, n]), dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    product().numpy()  # trace

    def run() -> float:
        start = time.perf_counter()
        product().numpy()
        return time.perf_counter() - start

    return run


def matmul_rates(shapes, repeats: int) -> dict:
    """GFLOP/s of each (name, (m, k, n)) in float32 and bfloat16: best of `repeats`, the two
    precisions interleaved."""
    rates = {}
    for name, (m, k, n) in shapes:
        runs = {p: matmul_seconds(m, k, n, getattr(tf, p)) for p in ("float32", "bfloat16")}
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(repeats):
            for precision, run in runs.items():
                best[precision] = min(best[precision], run())
        for precision, seconds in best.items():
            rates[name, precision] = 2.0 * m * k * n / seconds / 1e9
    return rates


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


def build_step(variant: str, batch: dict, jit: bool, sizes: dict):
    """(train_step function, the model's config) of one variant on a fixed batch; `sizes`:
    time_sizes and note_sizes."""
    keras.utils.set_random_seed(0)
    y = tf.constant(batch["state"])
    if variant == "peer":
        from peer_keras_biaxial import compiled_peer, peer_inputs

        model = compiled_peer(**sizes)
        x = peer_inputs(batch["state"], batch["beat"])
        config = BiaxialModel(**sizes).get_config()  # same sizes: the same FLOPs
    else:
        model = BiaxialModel(precision=variant, **sizes)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=BiaxialNLL(), jit_compile=jit)
        x = {k: tf.constant(v) for k, v in batch.items()}
        config = model.get_config()
    return (lambda: model.train_on_batch(x, y)), config


def memory_of(variant: str, args) -> None:
    """Child process: build, trace and run two steps of one variant; print its peak memory."""
    batch = realistic_batch(args.batch, args.steps, 78)
    step, _ = build_step(variant, batch, args.jit, _sizes(args))
    for _ in range(2):
        step()
    print(json.dumps({"variant": variant, "peak_mb": peak_resident_mb()}))


def peak_resident_mb() -> float:
    """This process's peak resident memory in MB: VmHWM of /proc/self/status where there is one
    (Linux). `ru_maxrss` is the fallback, but it is carried over from the parent through fork
    and exec, so a child started by a large parent reports at least the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sizes(args) -> dict:
    return {"time_sizes": args.time_sizes, "note_sizes": args.note_sizes}


def children_peak_mb(args) -> dict:
    """{variant: peak MB} from one child process per variant, run side by side (after the
    timing, so they disturb nothing; memory does not depend on the speed)."""
    children = {}
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--memory-of", variant]
        command += ["--batch", str(args.batch), "--steps", str(args.steps)]
        command += ["--time-sizes", ",".join(map(str, args.time_sizes))]
        command += ["--note-sizes", ",".join(map(str, args.note_sizes))]
        command += ["--gradient", args.gradient] + (["--jit"] if args.jit else [])
        command += ["--no-xla-cells"] if args.no_xla_cells else []
        children[variant] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    peaks = {}
    for variant, child in children.items():
        out, err = child.communicate()
        if child.returncode:
            raise SystemExit(f"{variant}: the memory child failed:\n{err[-2000:]}")
        peaks[variant] = json.loads(out.strip().splitlines()[-1])["peak_mb"]
    return peaks


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=10, help="segments per batch (10)")
    parser.add_argument("--steps", type=int, default=128, help="time steps per segment (128)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (5; quick 2)")
    parser.add_argument("--quick", action="store_true", help="batch 2 x 32 steps, 2 rounds")
    parser.add_argument("--no-memory", action="store_true", help="skip the child processes")
    parser.add_argument("--time-sizes", type=_int_list, default=[300, 300], metavar="300,300")
    parser.add_argument("--note-sizes", type=_int_list, default=[100, 50], metavar="100,50")
    parser.add_argument("--jit", action="store_true", help="compile our step with XLA")
    parser.add_argument(
        "--gradient",
        choices=["fused", "autodiff"],
        default="fused",
        help="our LSTM backward pass: hand-written (fused, default) or TensorFlow's autodiff",
    )
    parser.add_argument(
        "--no-xla-cells",
        action="store_true",
        help="plain TensorFlow gate arithmetic instead of the XLA-fused cells",
    )
    parser.add_argument("--memory-of", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps = 2, 32
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    model_module.LSTM_GRADIENT = args.gradient
    model_module.XLA_CELLS = not args.no_xla_cells
    if args.memory_of:
        memory_of(args.memory_of, args)
        return

    load_before, started = os.getloadavg(), time.perf_counter()
    n_notes = 78
    rows = args.batch * args.steps * n_notes
    width, units = args.time_sizes[0], args.time_sizes[-1]
    shaped = (rows, width, 4 * units)  # the second time layer's input projection
    shapes = [("2048^3", (2048,) * 3), (f"({rows}, {width}) @ ({width}, {4 * units})", shaped)]
    rates = matmul_rates(shapes, repeats=3)
    print(f"matmul rates measured ({time.perf_counter() - started:.1f} s)", flush=True)

    batch = realistic_batch(args.batch, args.steps, n_notes)
    steps, firsts, config = {}, {}, None
    for variant in VARIANTS:
        steps[variant], config = build_step(variant, batch, args.jit, _sizes(args))
        start = time.perf_counter()
        steps[variant]()  # trace (and compile)
        firsts[variant] = time.perf_counter() - start
        print(f"{variant}: built and traced in {firsts[variant]:.1f} s", flush=True)
    for variant in VARIANTS:
        steps[variant]()  # one untimed warm step each
    seconds = {variant: [] for variant in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            start = time.perf_counter()
            steps[variant]()
            seconds[variant].append(time.perf_counter() - start)
            print(f"{variant}: {seconds[variant][-1]:.2f} s", flush=True)
    median = {variant: float(np.median(s)) for variant, s in seconds.items()}

    after = matmul_rates(shapes, repeats=3)
    for key, rate in after.items():
        rates[key] = max(rates[key], rate)
    load_after = os.getloadavg()
    peaks = {} if args.no_memory else children_peak_mb(args)

    print(
        f"batch {args.batch} x {args.steps} steps x {n_notes} notes, sizes time "
        f"{tuple(config['time_sizes'])} note {tuple(config['note_sizes'])}, jit={args.jit}, "
        f"gradient={args.gradient}, xla_cells={model_module.XLA_CELLS}, cpus={os.cpu_count()}, "
        f"native bfloat16: {model_module.native_bfloat16() or 'no'}"
    )
    best_rate = {}
    for precision in ("float32", "bfloat16"):
        best_rate[precision] = max(rates[name, precision] for name, _ in shapes)
        listed = "; ".join(f"{name} {rates[name, precision]:.1f}" for name, _ in shapes)
        print(f"matmul {precision:<8} GFLOP/s (best of before and after the steps): {listed}")
    flops = flops_per_train_step(config, args.batch, args.steps)
    for variant in VARIANTS:
        gflops = flops / median[variant] / 1e9
        precision = "float32" if variant == "peer" else variant
        memory = f", peak memory {peaks[variant]:.0f} MB" if peaks else ""
        print(
            f"{variant:<8} median {median[variant]:.3f} s/step of {args.repeats} "
            f"({' '.join(f'{s:.2f}' for s in seconds[variant])}); first {firsts[variant]:.1f} s; "
            f"{gflops:.1f} GFLOP/s = {gflops / best_rate[precision]:.0%} of the {precision} "
            f"matmul rate; {median[variant] / median['peer']:.2f}x the peer{memory}"
        )
    print(
        f"load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after (every step uses all cores: other "
        "jobs slow it)"
    )
    ours = median[DEFAULT_PRECISION]
    fraction = flops / ours / 1e9 / best_rate[DEFAULT_PRECISION]
    print(
        f"train_step_seconds={ours:.3f} peer_seconds={median['peer']:.3f} "
        f"ratio={ours / median['peer']:.3f} peak_fraction={fraction:.3f} "
        f"precision={DEFAULT_PRECISION}"
    )


if __name__ == "__main__":
    main()
