"""Train on the Boulanger-Lewandowski benchmarks and report the test NLL per time step.

    .venv/bin/python benchmarks/bench_benchmarks.py                     # JSB, 60 minutes
    .venv/bin/python benchmarks/bench_benchmarks.py --chord-below --patience 15   # our best
    .venv/bin/python benchmarks/bench_benchmarks.py --sets jsb,nottingham --minutes 30
    .venv/bin/python benchmarks/bench_benchmarks.py --minutes 2         # a smoke test

For each set: train on its train split (`musicutils.train.train`, early stopping on the NLL of
the whole valid pieces, best weights kept) within `--minutes` of wall time, then score the best
weights on the whole test pieces. Prints one line per set:

    jsb: test_nll_per_step=9.164 (play bits, 88 keys; +articulation 10.117) valid=8.866
        best_epoch=12 epochs=12 minutes=9.5 (with test 9.6) model=time 100,100 note 60,30 batch
        16 x 32 steps

(that line: the defaults with `--minutes 10` on a 2-core machine shared with other jobs, load
average 5-8; 300 updates. The validation NLL sits on a plateau near 16 nats, the cost of knowing
only how often each key sounds, for the first ~100 updates, then falls steadily.)

`test_nll_per_step` is the negative log-likelihood of the test set in nats per time step over
the 88 play bits (total over all test steps / number of test steps), the figure published for
these benchmarks (Boulanger-Lewandowski et al. 2012; Bai et al. 2018 use the same, though they
do not score each piece's first frame; we do, predicting it from silence, which is slightly
stricter). Articulation is derived from onsets in this data (a note restruck in consecutive
frames is one held note), so the play figure is the comparable one.

Run folders go to `--out` (default out/bench/<set>); running the same command again resumes an
unfinished run (the minutes count again from the new start).

Data: the pickles in ../shared/data/polyphonic (beside the checkout) or `--data-dir`; see
`musicutils.datasets.download_benchmark` to fetch them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicutils import datasets, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "polyphonic"

#: Benchmark name (a key of `datasets.BENCHMARKS`, which knows its file) -> default segment
#: length in steps. JSB steps are quarter notes and its pieces 25..160 steps long: 32 steps = 8
#: bars and only one training piece is shorter. The other sets have eighth-note steps and longer
#: pieces.
SETS = {"jsb": 32, "nottingham": 128, "musedata": 128, "piano": 128}


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sets", default="jsb", help="comma-separated: " + ",".join(SETS) + " (default jsb)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=60.0,
        help="wall-clock training budget per set (default 60)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    # Defaults: a third of Johnson's model, small batches; on a 2-core CPU the number of updates
    # is what limits an hour's training (see the module docstring).
    parser.add_argument("--time-sizes", type=_sizes, default=[100, 100])
    parser.add_argument("--note-sizes", type=_sizes, default=[60, 30])
    parser.add_argument(
        "--chord-below", action="store_true", help="note-axis chord inputs (model.chord_below)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--segment-length",
        type=int,
        default=None,
        help="steps per training segment (default: per set, 32 for JSB)",
    )
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument(
        "--ema", type=float, default=0.0, help="weight averaging momentum (0: off; see train)"
    )
    parser.add_argument(
        "--transpose",
        type=int,
        default=0,
        help="augment by random transposition within +-K semitones",
    )
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, help="0, 1 (progress bar) or 2")
    return parser.parse_args(argv)


def run_set(name: str, args: argparse.Namespace) -> dict:
    """Train and test one benchmark; returns the numbers printed."""
    file, default_length = datasets.BENCHMARKS[name].file, SETS[name]
    path = args.data_dir / file
    if not path.exists():
        raise SystemExit(
            f"{path}: not found (use --data-dir, or "
            f"musicutils.datasets.download_benchmark({name!r}, folder))"
        )
    segment_length = args.segment_length or default_length
    started = time.perf_counter()
    result = train.train(
        path,
        args.out / name,
        epochs=100_000,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        segment_length=segment_length,
        time_sizes=args.time_sizes,
        note_sizes=args.note_sizes,
        chord_below=args.chord_below,
        dropout=args.dropout,
        learning_rate=args.learning_rate,
        ema=args.ema,
        transpose=args.transpose,
        patience=args.patience,
        seed=args.seed,
        verbose=args.verbose,
        time_limit=args.minutes * 60,
    )
    trained_minutes = (time.perf_counter() - started) / 60
    test = train.evaluate(result.model, datasets.load_benchmark(path)["test"])
    return {
        "set": name,
        "test_play": test["play_nll"],
        "test_all": test["nll"],
        "valid": result.history[result.best_epoch - 1]["val_play_nll"],
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_completed,
        "minutes": trained_minutes,
        "total_minutes": (time.perf_counter() - started) / 60,
        "segment_length": segment_length,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    lines = []
    for name in names:
        r = run_set(name, args)
        model = (
            f"time {','.join(map(str, args.time_sizes))} note "
            f"{','.join(map(str, args.note_sizes))} batch {args.batch_size} x "
            f"{r['segment_length']} steps"
        )
        lines.append(
            f"{name}: test_nll_per_step={r['test_play']:.3f} (play bits, 88 keys; "
            f"+articulation {r['test_all']:.3f}) valid={r['valid']:.3f} "
            f"best_epoch={r['best_epoch']} epochs={r['epochs']} "
            f"minutes={r['minutes']:.1f} (with test {r['total_minutes']:.1f}) model={model}"
        )
        print(lines[-1], flush=True)
    if len(lines) > 1:
        print("\n".join(["", "summary:", *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
