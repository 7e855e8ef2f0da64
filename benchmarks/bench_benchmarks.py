"""Train on the Boulanger-Lewandowski benchmarks and report the test NLL per time step.

    .venv/bin/python benchmarks/bench_benchmarks.py --sets jsb --seed 0 --minutes 120 \\
        --chord-below --patience 15 --keep-epochs --average-around 5  # the README's 4.79, 4.75
    .venv/bin/python benchmarks/bench_benchmarks.py --sets jsb --minutes 60 --chord-below \\
        --patience 15 --seeds 0,1,2                    # three seeds, mean +- std
    .venv/bin/python benchmarks/bench_benchmarks.py --sets musedata --minutes 120 --chord-below \\
        --patience 15
    .venv/bin/python benchmarks/bench_benchmarks.py --minutes 0.05 --no-record   # a smoke test
    .venv/bin/python benchmarks/bench_benchmarks.py --sets piano --time-batches 3  # cost only
    .venv/bin/python benchmarks/bench_benchmarks.py --sets jsb,piano --baselines  # no training

For each set and seed: train on its train split (`musicutils.train.train`, early stopping on the
NLL of the whole valid pieces, best weights kept) within `--minutes` of wall time, then score
the best weights on the whole test pieces. Prints one line per run and appends it, as printed,
to `benchmarks/results/<set>.txt` (atomically: the file is rewritten through a temporary file;
`--no-record` for smoke runs; lines starting with `#` there are comments):

    jsb: test_nll_per_step=4.979 test_nll_with_articulation=5.009 valid=4.962 best_epoch=91
        epochs=106 minutes=29.6 stopped=early seed=0 model="time 100,100; note 60,30;
        chord-below; batch 16 x 32; 25 batches/epoch" command="benchmarks/bench_benchmarks.py
        --sets jsb --seed 0 --minutes 60 --chord-below --patience 15"

(one line in the file; wrapped here). `test_nll_per_step` is the negative log-likelihood of the
test set in nats per time step over the 88 play bits (total over all test steps / number of
test steps), the figure published for these benchmarks (Boulanger-Lewandowski et al. 2012; Bai
et al. 2018 use the same, though they do not score each piece's first frame; we do, predicting
it from silence, which is slightly stricter). Articulation is derived from onsets in this data
(a note restruck in consecutive frames is one held note), so the play figure is the comparable
one. `valid` is the play-bit NLL of the valid pieces at the best epoch; `minutes` sums the
seconds of every completed epoch (training and validation) over all the sessions of the run,
so a run stopped by `--minutes` and resumed by the same command reports its total time;
`stopped` says why the run ended (early: patience ran out; time: the `--minutes` limit, run the
command again to continue); `command` reproduces the line (`--seeds` is written as `--seed`).

Run folders: `--out/<set>/run-<hash of the training settings>` (`train.run_folder`), so
each seed and each option set has its own folder and running the same command again resumes
an unfinished run (the minutes limit counts again from the new start).

`--keep-epochs` keeps every epoch's weights (hard links to the backup the run writes after each
epoch, `<run>/epochs/`), and `--average-epochs A-B` then scores the average of the kept
weights of epochs A..B and prints (and records) a second line with `averaged_epochs=A-B`: the
README's weight-averaging figure of the earlier JSB run (epochs 78-88, with the script of that
time) is what `--keep-epochs --average-epochs 78-88` computes. Since each seed's run stops at
its own epoch (today's runs end before epoch 78),
`--average-around N` averages the epochs best-N..best+N of each run instead (as many of them as
the run has). Neither changes the training, so adding them to a finished run's command
averages without training again.

Default sizes per set (`SETS`): JSB 16 x 32 steps, 25 batches per epoch (the README's runs);
Nottingham 16 x 128, 25 batches (the README's 2.29; for new runs the README passes
`--steps-per-epoch 50`, see below); MuseData 16 x 128 with 100 batches per epoch and
Piano-midi.de 16 x 128 with 50, chosen by measurement. What one training batch costs
(`train_on_batch`, chord-below model, time 100,100, note 60,30, float32, batches of
Piano-midi.de segments; all shapes timed round-robin in one process, 5 rounds, median, so that
a change of load hits every shape alike; 2-core machine with nothing else running, load ~1.7;
its float32 matmuls reached 99 GFLOP/s that day, against 216 GFLOP/s in the README's
training-step figure; the README's earlier 4.98 JSB run took 16.8 s per epoch where these costs
give ~49 s):

    batch (segments x steps)   s/batch   ms per segment-step   per step vs 16 x 128
    16 x 32                     1.42      2.78                  0.91
    16 x 64                     2.79      2.72                  0.90
    32 x 64                     5.70      2.78                  0.92
    16 x 128                    6.19      3.02                  1.00
    64 x 32                     6.21      3.03                  1.00
    8 x 256                     6.26      3.06                  1.01
    16 x 256                   11.98      2.92                  0.97
    32 x 128                   13.16      3.21                  1.06
    validation, whole pieces    -         2.82 per valid step   0.93

(scratch script: one model, `SegmentSampler(...).dataset(B, weights=True)` per shape, each
shape traced once, then rounds of one batch of each shape; validation = `train.evaluate` on
every third valid piece by length, timed on its second pass. Under load the same shapes took
2 to 10 times longer and their ratios moved by up to 2x, so measure on a quiet machine:
`--time-batches 3` does it per set.)

So the cost is the number of segment-steps, within 10 %, from 512 to 4096 per batch: no shape
is cheaper per step, and the choice is one of optimisation, not of cost. We keep 16 x 128, the
Nottingham run's shape (16 bars of eighth notes; Johnson trained on 128-step segments). What
the measurement does decide is the number of batches per epoch: validation scores every valid
step after each epoch at about the cost of a training segment-step, so MuseData's 82,755 valid
steps cost as much as 38 batches of 16 x 128, Piano-midi.de's 8,540 about 4 and Nottingham's
45,513 about 21. With 100 batches per epoch MuseData spends about 27 % of its time validating
(60 % with 25 batches); Piano-midi.de with 50 about 7 %; Nottingham 29 % with 50 (45 % with
its default 25). Per epoch, on the slower machine above: MuseData ~850 s, Piano-midi.de
~335 s, Nottingham with 50 batches ~440 s, JSB ~49 s (the README's earlier 4.98 JSB run took
16.8 s per epoch on a faster day; on 2026-11-30 a JSB epoch took about 9 s and a Nottingham
epoch with 50 batches 59-69 s). Since the training data became every piece
(`datasets.SegmentSampler` pads the 163 MuseData and 2 Piano-midi.de training pieces shorter
than 128 steps with masked silence), no piece is left out at these lengths.

Data: the pickles in ../shared/data/polyphonic (beside the checkout) or `--data-dir`; see
`musicutils.datasets.download_benchmark` to fetch them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicutils import datasets, train  # noqa: E402
from musicutils._io import atomic_open  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "polyphonic"
RESULTS = ROOT / "benchmarks" / "results"
SCRIPT = "benchmarks/bench_benchmarks.py"


@dataclass(frozen=True)
class SetDefaults:
    """Training sizes of one benchmark (a key of `datasets.BENCHMARKS`, which knows its file).

    Attributes:
        segment_length: steps per training segment (JSB: quarter notes, pieces of 25..129
            steps in the train split, so 32 = 8 bars; the others: eighth notes).
        batch_size: segments per batch.
        steps_per_epoch: batches between two validations.
    """

    segment_length: int
    batch_size: int
    steps_per_epoch: int


SETS = {
    "jsb": SetDefaults(32, 16, 25),
    "nottingham": SetDefaults(128, 16, 25),
    "musedata": SetDefaults(128, 16, 100),
    "piano": SetDefaults(128, 16, 50),
}

#: Options that do not change a run's result line, left out of its `command=`: the sets and
#: seeds are written per run, the others only say where files go or how much is printed.
_PER_RUN = {"--sets", "--seeds", "--seed"}
_NOT_IN_COMMAND = {"--out", "--results-dir", "--verbose"}
_FLAGS_NOT_IN_COMMAND = {"--no-record"}


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _epoch_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        span = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST epochs, got {text!r}") from None
    if not 1 <= span[0] <= span[1]:
        raise argparse.ArgumentTypeError(f"expected 1 <= FIRST <= LAST, got {text!r}")
    return span


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sets", default="jsb", help="comma-separated: " + ",".join(SETS) + " (default jsb)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=60.0,
        help="wall-clock training budget per run (default 60)",
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
    parser.add_argument(
        "--struck-below",
        action="store_true",
        help="note-axis inputs of the notes struck below (model.struck_below)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: per set")
    parser.add_argument(
        "--segment-length",
        type=int,
        default=None,
        help="steps per training segment (default: per set, 32 for JSB, 128 for the others)",
    )
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="default: per set")
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
    parser.add_argument(
        "--precision",
        default="float32",
        help="of the LSTMs' matrix products: float32, bfloat16 or auto (see train)",
    )
    parser.add_argument("--seed", type=int, default=0, help="one seed (default 0)")
    parser.add_argument(
        "--seeds",
        type=_sizes,
        default=None,
        help="several seeds, e.g. 0,1,2: one run each, then the mean and standard deviation",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not append the result lines to benchmarks/results/<set>.txt (smoke runs)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep-epochs", action="store_true", help="keep every epoch's weights in <run>/epochs"
    )
    parser.add_argument(
        "--average-epochs",
        type=_epoch_range,
        default=None,
        metavar="FIRST-LAST",
        help="also score the average of the kept weights of these epochs (needs --keep-epochs)",
    )
    parser.add_argument(
        "--average-around",
        type=int,
        default=None,
        metavar="N",
        help="also score the average of the kept weights of epochs best-N..best+N of each run "
        "(needs --keep-epochs)",
    )
    parser.add_argument(
        "--time-batches",
        type=int,
        default=0,
        metavar="N",
        help="only measure: seconds per training batch (N batches after one warm-up) and per "
        "validation step; no training run, nothing recorded",
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="only print the test NLL of two baselines without training: each key's own "
        "frequency, and a two-state Markov chain per key; nothing recorded",
    )
    parser.add_argument("--verbose", type=int, default=2, help="0, 1 (progress bar) or 2")
    args = parser.parse_args(argv)
    args.set_names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in args.set_names if n not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    if (args.average_epochs or args.average_around is not None) and not args.keep_epochs:
        parser.error("--average-epochs and --average-around need --keep-epochs (the weights)")
    if args.average_epochs and args.average_around is not None:
        parser.error("give --average-epochs or --average-around, not both")
    if args.average_around is not None and args.average_around < 1:
        parser.error(f"--average-around must be at least 1, got {args.average_around}")
    if args.seeds is not None and not args.seeds:
        parser.error("--seeds: give at least one seed, e.g. 0,1,2")
    args.run_seeds = args.seeds if args.seeds is not None else [args.seed]
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def command_of(args: argparse.Namespace, name: str, seed: int) -> str:
    """The command line that reproduces one run: this script with `--sets name --seed seed` and
    every other option given, less those that do not change the result."""
    kept, tokens = [], iter(args.argv)
    for token in tokens:
        option, has_value, _ = token.partition("=")
        if option in _FLAGS_NOT_IN_COMMAND:
            continue
        if option in _PER_RUN | _NOT_IN_COMMAND:
            if not has_value:
                next(tokens, None)  # its value
            continue
        kept.append(token)
    return shlex.join([SCRIPT, "--sets", name, "--seed", str(seed), *kept])


def sizes_of(args: argparse.Namespace, name: str) -> SetDefaults:
    """The segment length, batch size and batches per epoch of a set: the options, else SETS."""
    default = SETS[name]
    return SetDefaults(
        args.segment_length or default.segment_length,
        args.batch_size or default.batch_size,
        args.steps_per_epoch or default.steps_per_epoch,
    )


def settings_of(args: argparse.Namespace, name: str, seed: int) -> dict:
    """Keyword arguments of `train.train` (data included) for one run."""
    sizes = sizes_of(args, name)
    path = (args.data_dir / datasets.BENCHMARKS[name].file).resolve()
    if not path.exists():
        raise SystemExit(
            f"{path}: not found (use --data-dir, or "
            f"musicutils.datasets.download_benchmark({name!r}, folder))"
        )
    return dict(
        data=str(path),
        epochs=100_000,
        steps_per_epoch=sizes.steps_per_epoch,
        batch_size=sizes.batch_size,
        segment_length=sizes.segment_length,
        time_sizes=tuple(args.time_sizes),
        note_sizes=tuple(args.note_sizes),
        chord_below=args.chord_below,
        struck_below=args.struck_below,
        dropout=args.dropout,
        learning_rate=args.learning_rate,
        ema=args.ema,
        transpose=args.transpose,
        patience=args.patience,
        seed=seed,
        precision=args.precision,
    )


def describe_model(args: argparse.Namespace, name: str) -> str:
    sizes = sizes_of(args, name)
    parts = [
        f"time {','.join(map(str, args.time_sizes))}",
        f"note {','.join(map(str, args.note_sizes))}",
        *(["chord-below"] if args.chord_below else []),
        *(["struck-below"] if args.struck_below else []),
        *([args.precision] if args.precision != "float32" else []),
        f"batch {sizes.batch_size} x {sizes.segment_length}",
        f"{sizes.steps_per_epoch} batches/epoch",
    ]
    return "; ".join(parts)


class EpochKeeper:
    """Hard-links each `backup/epoch-NNNN.weights.h5` of a run into `<run>/epochs/` while it
    trains. The run writes that file after each epoch and deletes it after the next one (see
    `musicutils.train`), so polling every half second never misses one."""

    def __init__(self, run_dir: Path):
        self.backup, self.kept = run_dir / "backup", run_dir / "epochs"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def scan(self) -> None:
        for path in self.backup.glob("epoch-*.weights.h5"):
            target = self.kept / path.name
            if not target.exists():
                self.kept.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except FileNotFoundError:  # deleted between the glob and the link
                    pass

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self.scan()

    def __enter__(self) -> EpochKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.scan()


class MissingEpochs(Exception):
    """Some epochs to average were not kept (the run is shorter, or ran without --keep-epochs)."""


def average_kept_epochs(result: train.TrainResult, settings: dict, first: int, last: int):
    """The best model's architecture with the mean of the kept weights of epochs first..last."""
    import numpy as np

    from musicutils import model as model_lib
    from musicutils._tf import keras

    files = [
        result.run_dir / "epochs" / f"epoch-{e:04d}.weights.h5" for e in range(first, last + 1)
    ]
    if last > result.epochs_completed:
        raise MissingEpochs(
            f"the run ended after epoch {result.epochs_completed} (best epoch "
            f"{result.best_epoch}), before epoch {last}"
        )
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise MissingEpochs(
            f"{result.run_dir / 'epochs'}: no kept weights for {', '.join(missing)} (epochs "
            "trained without --keep-epochs are not kept)"
        )
    model = model_lib.BiaxialModel.from_config(result.model.get_config())
    ema = settings["ema"]
    model.compile(
        optimizer=keras.optimizers.Adam(use_ema=ema > 0, ema_momentum=ema if ema > 0 else 0.99),
        loss=model_lib.BiaxialNLL(),
    )
    pieces = datasets.load_benchmark(settings["data"])["valid"][:1]
    state, beat, _ = next(datasets.padded_batches(pieces))
    model({"state": state, "beat": beat})  # build
    model.optimizer.build(model.trainable_variables)
    total = None
    for file in files:  # the backup holds the model and its optimizer; we average the model
        model.load_weights(file)
        weights = [v.numpy().astype(np.float64) for v in model.trainable_variables]
        total = weights if total is None else [t + w for t, w in zip(total, weights, strict=True)]
    for variable, summed in zip(model.trainable_variables, total, strict=True):
        variable.assign((summed / len(files)).astype(np.float32))
    return model


def run_set(name: str, seed: int, args: argparse.Namespace) -> list[dict]:
    """Train (or resume) and test one benchmark with one seed; the numbers of its line(s)."""
    settings = settings_of(args, name, seed)
    run_dir = train.run_folder(args.out / name, settings)
    started = time.perf_counter()
    keeper = EpochKeeper(run_dir) if args.keep_epochs else None
    if keeper:
        keeper.__enter__()
    try:
        result = train.train(
            out=run_dir, verbose=args.verbose, time_limit=args.minutes * 60, **settings
        )
    finally:
        if keeper:
            keeper.__exit__()
    splits = datasets.load_benchmark(settings["data"])
    test = train.evaluate(result.model, splits["test"])
    if result.stopped_early:
        stopped = "early"
    elif result.epochs_completed >= settings["epochs"]:
        stopped = "epochs"
    else:
        stopped = "time"
    common = {
        "set": name,
        "seed": seed,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_completed,
        "minutes": sum(row["seconds"] for row in result.history) / 60,
        "stopped": stopped,
        "session_minutes": (time.perf_counter() - started) / 60,
        "run_dir": run_dir,
    }
    rows = [
        {
            **common,
            "test_play": test["play_nll"],
            "test_all": test["nll"],
            "valid": result.history[result.best_epoch - 1]["val_play_nll"],
        }
    ]
    if args.average_epochs or args.average_around is not None:
        if args.average_epochs:
            first, last = args.average_epochs
        else:  # around this run's best epoch, as far as the run goes
            first = max(1, result.best_epoch - args.average_around)
            last = min(result.epochs_completed, result.best_epoch + args.average_around)
        try:
            averaged = average_kept_epochs(result, settings, first, last)
        except MissingEpochs as exc:  # say so and go on with the other seeds and sets
            print(f"{name}: seed {seed}: epochs {first}-{last} not averaged: {exc}", flush=True)
            return rows
        valid = train.evaluate(averaged, splits["valid"])
        test = train.evaluate(averaged, splits["test"])
        best_single = min(r["val_play_nll"] for r in result.history[first - 1 : last])
        rows.append(
            {
                **common,
                "test_play": test["play_nll"],
                "test_all": test["nll"],
                "valid": valid["play_nll"],
                "averaged": f"{first}-{last}",
                "best_single_valid": best_single,
            }
        )
    return rows


def result_line(r: dict, args: argparse.Namespace) -> str:
    """The line printed and recorded for one run (see the module docstring)."""
    averaged = (
        f" averaged_epochs={r['averaged']} best_single_epoch_valid={r['best_single_valid']:.3f}"
        if "averaged" in r
        else ""
    )
    return (
        f"{r['set']}: test_nll_per_step={r['test_play']:.3f} "
        f"test_nll_with_articulation={r['test_all']:.3f} valid={r['valid']:.3f}{averaged} "
        f"best_epoch={r['best_epoch']} epochs={r['epochs']} minutes={r['minutes']:.1f} "
        f"stopped={r['stopped']} seed={r['seed']} "
        f'model="{describe_model(args, r["set"])}" '
        f'command="{command_of(args, r["set"], r["seed"])}"'
    )


def record(line: str, name: str, results_dir: Path) -> Path:
    """Append one line to results_dir/<name>.txt atomically (rewritten through a temp file)."""
    path = results_dir / f"{name}.txt"
    before = path.read_text() if path.exists() else ""
    if before and not before.endswith("\n"):
        before += "\n"
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(before + line + "\n")
    return path


def seeds_summary(name: str, values: list[float], seeds: list[int], what: str = "") -> str:
    """Mean and sample standard deviation (n - 1) of the test NLL over the seeds; `what` says
    which models were scored (e.g. "averaged weights")."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    listed = ", ".join(f"{v:.3f}" for v in values)
    return (
        f"{name}: seeds {','.join(map(str, seeds))}{': ' + what if what else ''}: "
        f"test_nll_per_step mean={mean:.3f} "
        f"std={std:.3f} (sample standard deviation, n={len(values)}; {listed})"
    )


def baselines(name: str, args: argparse.Namespace) -> str:
    """Test NLL per step (play bits, as the runs report it) of two models with no learning
    beyond counting, to read the runs' figures against: every key plays with its own frequency
    in the train split, independently of everything ("base rate"); or with its frequency given
    whether it sounded in the step before ("Markov": a two-state Markov chain per key, which
    already knows that notes are held). Add-half smoothing; each piece starts from silence."""
    import numpy as np

    splits = datasets.load_benchmark(settings_of(args, name, args.run_seeds[0])["data"])

    def bits(piece):  # (T, N) play bits, and whether each key sounded in the step before
        play = piece.state[..., 0] > 0
        return play, np.vstack([np.zeros_like(play[:1]), play[:-1]])

    counts = 0  # [key, sounded before, plays now]
    for piece in splits["train"]:
        play, before = bits(piece)
        cell = 2 * before.astype(np.int64) + play  # 0..3 = (before, now) as two bits
        counts = counts + np.stack([(cell == k).sum(axis=0) for k in range(4)], axis=1)
    counts = counts.reshape(-1, 2, 2).astype(np.float64)
    base = (counts[:, :, 1].sum(axis=1) + 0.5) / (counts.sum(axis=(1, 2)) + 1.0)  # (N,)
    markov = (counts[:, :, 1] + 0.5) / (counts.sum(axis=2) + 1.0)  # (N, before)
    nats, steps = np.zeros(2), 0
    keys = np.arange(counts.shape[0])
    for piece in splits["test"]:
        play, before = bits(piece)
        predicted = (np.broadcast_to(base, play.shape), markov[keys, before.astype(np.int64)])
        for i, p in enumerate(predicted):
            nats[i] -= np.log(np.where(play, p, 1.0 - p)).sum()
        steps += len(play)
    return (
        f"{name}: baselines test_nll_per_step base_rate={nats[0] / steps:.3f} "
        f"markov={nats[1] / steps:.3f} ({len(splits['test'])} test pieces, {steps} steps; "
        "per-key probabilities counted on the train split)"
    )


def time_batches(name: str, args: argparse.Namespace) -> str:
    """Seconds per training batch and per validation step of one set at the chosen sizes."""
    import numpy as np

    from musicutils import model as model_lib
    from musicutils._tf import keras

    settings = settings_of(args, name, args.run_seeds[0])
    splits = datasets.load_benchmark(settings["data"])
    sampler = datasets.SegmentSampler(splits["train"], settings["segment_length"])
    keras.utils.set_random_seed(settings["seed"])
    model = model_lib.BiaxialModel(
        n_notes=sampler.n_notes,
        lowest=sampler.lowest,
        time_sizes=settings["time_sizes"],
        note_sizes=settings["note_sizes"],
        dropout=settings["dropout"],
        seed=settings["seed"],
        steps_per_beat=splits["train"][0].steps_per_beat,
        chord_below=settings["chord_below"],
        struck_below=settings["struck_below"],
        precision=model_lib.resolve_precision(settings["precision"]),
    )
    model.compile(  # as train.train compiles it
        optimizer=keras.optimizers.Adam(settings["learning_rate"]),
        loss=model_lib.BiaxialNLL(),
        weighted_metrics=[model_lib.PlayNLL()],
    )
    batches = iter(sampler.dataset(settings["batch_size"], seed=settings["seed"], weights=True))
    seconds = []
    for i in range(args.time_batches + 1):  # the first one traces
        inputs, target, weight = next(batches)
        began = time.perf_counter()
        model.train_on_batch(inputs, target, sample_weight=weight)
        if i:
            seconds.append(time.perf_counter() - began)
    per_batch = float(np.median(seconds))
    # Validation: whole valid pieces, as train.train scores them after each epoch; timed on a
    # spread of them (every k-th by length, about 4000 steps), the second time: the first pass
    # compiles the XLA cells for each new padded length, which a run does in its first epoch only.
    valid = sorted(splits["valid"], key=lambda p: p.n_steps)
    total_steps = sum(p.n_steps for p in valid)
    every = max(1, round(total_steps / 4000))
    sample = valid[::every]
    train.evaluate(model, sample, batch_size=settings["batch_size"])
    began = time.perf_counter()
    scored = train.evaluate(model, sample, batch_size=settings["batch_size"])
    per_step = (time.perf_counter() - began) / scored["steps"]
    epoch = settings["steps_per_epoch"] * per_batch + total_steps * per_step
    size, length = settings["batch_size"], settings["segment_length"]
    listed = ", ".join(f"{s:.2f}" for s in seconds)
    return (
        f"{name}: seconds_per_batch={per_batch:.2f} (median of {len(seconds)}: {listed}) "
        f"batch={size} x {length} ms_per_segment_step={1000 * per_batch / size / length:.2f} "
        f"validation_ms_per_step={1000 * per_step:.2f} valid_steps={total_steps} "
        f"epoch_seconds~{epoch:.0f} ({settings['steps_per_epoch']} batches + validation); "
        f"training: {sampler.describe()}"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.time_batches or args.baselines:
        for name in args.set_names:
            print((time_batches if args.time_batches else baselines)(name, args), flush=True)
        return 0
    lines = []
    for name in args.set_names:
        test_values, averaged_values = [], []
        for seed in args.run_seeds:
            for r in run_set(name, seed, args):
                line = result_line(r, args)
                print(line, flush=True)
                lines.append(line)
                if not args.no_record:
                    record(line, name, args.results_dir)
                (averaged_values if "averaged" in r else test_values).append(r["test_play"])
        summaries = []
        if len(args.run_seeds) > 1:
            summaries.append(seeds_summary(name, test_values, args.run_seeds))
            if len(averaged_values) == len(args.run_seeds):  # every seed's run was averaged
                summaries.append(
                    seeds_summary(name, averaged_values, args.run_seeds, "averaged weights")
                )
        for summary in summaries:
            print(summary, flush=True)
            lines.append(summary)
            if not args.no_record:
                record(f"# {summary}", name, args.results_dir)
    if len(lines) > 1:
        print("\n".join(["", "summary:", *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
