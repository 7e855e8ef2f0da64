"""How close is composed music to real music? The music-quality benchmark.

    .venv/bin/python benchmarks/bench_music.py [--checkpoint DIR] [--real DIR] [--pieces 16]
        [--steps 256] [--seed 0] [--temperature 1.0] [--no-adaptive] [--voices N] [--draws 2]
        [--allow-parallels] [--figure PATH]

Composes `--pieces` pieces of `--steps` steps in one batch with `generate`'s default settings
(temperature 1, the adaptive rule on, the voice rule with the model's own `voices`, 2 draws and
its parallels tie-break, 4/4) and a fixed `--seed`, with the checkpoint (default:
the bundled model), and compares them with the real pieces of `--real` (default: the 30 bundled
chorales, `data.BUNDLED_CHORALES`; the bundled model is trained on the chorales that
`scripts/build_dataset.py --all --skip 30` exports, so these are held out). `--composed DIR`
compares the MIDI files of DIR instead of composing (no TensorFlow).

Prints, for both sides, the histograms of `musicutils.stats.HISTOGRAMS` (notes sounding at once,
note lengths, notes struck per step and where in the bar, pitch classes, intervals sounding
together, top and bottom voice motion, span; shares in %) with the total variation distance of
each, single numbers (four-voice and silent steps, fit to one key, the share of 16-beat
passages in their piece's key, `stats.home_key_share`, register, and the share of
seconds and sevenths among the pairs of notes struck together, `stats.struck_intervals`: m2 or
M7, and M2 or m7; and parallel fifths and octaves between the voices of four-voice steps per
chord change, `stats.parallel_perfects`; neither among the classifier's features), and the
two-sample classifier test of `musicutils.stats`: windows of `--window-bars` bars every
`--stride-bars`, logistic regression cross-validated over `--folds` folds grouped by piece,
balanced classes, averaged over `--repeats` random fold assignments (0.5 = indistinguishable).
The floor is the same test between two random halves of the real pieces, averaged over
`--repeats` splits.
`--figure PATH` saves `stats.plot_comparison` of the two sides.

The last line is machine-readable:
`classifier_accuracy=A floor=F four_voice_share=S silent_share=Q tv_notes_at_once=...` (the
composed side's shares and the distance of every histogram).

Measured on the bundled model (the struck-below run's epoch 70 and 16 more, pretrained/README.md),
default command (the voice rule with its parallels tie-break), on the 2-core development machine:

    classifier_accuracy=0.708 floor=0.518 four_voice_share=0.964 silent_share=0.001
    tv_notes_at_once=0.061 tv_note_lengths=0.034 tv_onsets_per_step=0.022
    tv_onset_positions=0.034 tv_pitch_classes=0.187 tv_intervals=0.035 tv_top_motion=0.113
    tv_bottom_motion=0.047 tv_span=0.108

with `--allow-parallels` (the voice rule on the count alone, the default from commit b1f0f17
until the tie-break was added):

    classifier_accuracy=0.709 floor=0.518 four_voice_share=0.973 silent_share=0.001
    tv_notes_at_once=0.070 tv_note_lengths=0.048 tv_onsets_per_step=0.026
    tv_onset_positions=0.039 tv_pitch_classes=0.200 tv_intervals=0.040 tv_top_motion=0.127
    tv_bottom_motion=0.078 tv_span=0.087

and plainly (`--voices 0`):

    classifier_accuracy=0.741 floor=0.518 four_voice_share=0.808 silent_share=0.008
    tv_notes_at_once=0.100 tv_note_lengths=0.079 tv_onsets_per_step=0.037
    tv_onset_positions=0.052 tv_pitch_classes=0.116 tv_intervals=0.039 tv_top_motion=0.120
    tv_bottom_motion=0.071 tv_span=0.113

(the real chorales: 90 % four-voice steps, 0.4 % silent, key correlation 0.87). Sixteen pieces
are few: seeds 1 and 2 give 0.733 and 0.754 (0.719 and 0.756 on the count alone, 0.772 and
0.757 plainly), and `--pieces 64` gives 0.792, 0.775 and 0.738 at seeds 0-2. Earlier bundled
models, default command: Johnson's architecture (up to commit 83d2110; it had seen the 30
chorales in training) 0.988 with 30 % four-voice steps; the chord-below model (up to commit
619405b) 0.911 plainly and 0.807 with the voice rule; the first stage of today's model alone (up
to commit c0da88a) 0.799, 0.795 plainly, 0.775 / 0.803 / 0.794 with 64 pieces
(pretrained/README.md has their full lines' figures).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# The classifier's matrices are small (a few hundred rows): BLAS threads only fight over a
# shared CPU (25 times slower on a loaded 2-core machine). Set before numpy loads BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicutils import data, midi, stats  # noqa: E402
from musicutils.cli import InRange  # noqa: E402  (the CLI's range-checked numbers)

#: Distances printed on the last line, in this order (every histogram).
LAST_LINE_DISTANCES = tuple(stats.HISTOGRAMS)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**31), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="run folder (default: the bundled model)")
    parser.add_argument(
        "--composed", type=Path, help="compare the MIDI files of this folder instead of composing"
    )
    parser.add_argument(
        "--real", type=Path, help="folder of real MIDI pieces (default: the bundled chorales)"
    )
    parser.add_argument("--pieces", type=_positive_int, default=16, help="pieces to compose")
    parser.add_argument("--steps", type=_positive_int, default=256, help="steps per piece")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the composition")
    parser.add_argument("--temperature", type=_positive_float, default=1.0)
    parser.add_argument(
        "--no-adaptive",
        dest="adaptive",
        action="store_false",
        help="turn the anti-silence rule off",
    )
    parser.add_argument(
        "--voices",
        type=InRange("voices"),
        default=None,
        help="the voice rule's number of voices (default: the model's own; 0: off)",
    )
    parser.add_argument(
        "--draws", type=InRange("draws"), default=2, help="draws per step of the voice rule"
    )
    parser.add_argument(
        "--allow-parallels",
        dest="avoid_parallels",
        action="store_false",
        help="the voice rule keeps the closest draw to the number of voices even when another "
        "as close does not move in parallel fifths or octaves",
    )
    parser.add_argument("--window-bars", type=_positive_int, default=4, help="bars per window")
    parser.add_argument("--stride-bars", type=_positive_int, default=1, help="bars between windows")
    parser.add_argument("--folds", type=_positive_int, default=5, help="cross-validation folds")
    parser.add_argument(
        "--repeats", type=_positive_int, default=5, help="fold assignments and floor splits"
    )
    parser.add_argument(
        "--l2", type=_positive_float, default=10.0, help="L2 penalty of the logistic regression"
    )
    parser.add_argument("--figure", type=Path, help="save the comparison figure here (.png)")
    args = parser.parse_args(argv)
    if args.composed is not None and args.checkpoint is not None:
        parser.error("give --checkpoint or --composed, not both")
    for name in ("composed", "real", "checkpoint"):
        folder = getattr(args, name)
        if folder is not None and not folder.is_dir():
            parser.error(f"--{name} {folder}: no such folder")
    if args.figure is not None and args.figure.suffix.lower() not in (".png", ".svg", ".pdf"):
        parser.error(f"--figure {args.figure}: expected a .png, .svg or .pdf file name")
    return args


def compose(args: argparse.Namespace) -> tuple[np.ndarray, int, int, float]:
    """Compose with the checkpoint: (states (B, T, N, 2), lowest, steps per beat, seconds)."""
    from musicutils import generate

    net = generate.load_checkpoint(args.checkpoint)
    started = time.perf_counter()
    states = generate.generate(
        net,
        args.steps,
        batch_size=args.pieces,
        seed=args.seed,
        temperature=args.temperature,
        adaptive=args.adaptive,
        voices=args.voices,
        draws=args.draws,
        avoid_parallels=args.avoid_parallels,
    )
    return states, int(net.lowest), int(net.steps_per_beat), time.perf_counter() - started


def load_folder(folder: Path, steps_per_beat: int, what: str) -> list[midi.Piece]:
    corpus = data.load_corpus(folder, steps_per_beat=steps_per_beat, progress=False)
    if len(corpus) < 2:
        sys.exit(f"error: {what} {folder}: {len(corpus)} readable MIDI pieces, need at least 2")
    return corpus.pieces


def _row(label: str, values, width: int) -> str:
    return f"  {label:<9}" + "".join(f"{v:>{width}}" for v in values)


def histogram_table(real: dict, composed: dict, tv: dict) -> str:
    """Both sides' histograms in %, one block per histogram, with its total variation."""
    lines = []
    for name, (title, bins) in stats.HISTOGRAMS.items():
        width = max(5, max(len(b) for b in bins) + 1)
        lines.append(f"{name}: {title}   total variation {tv[name]:.3f}")
        lines.append(_row("", bins, width))
        lines.append(_row("real", [f"{100 * v:.1f}" for v in real[name]], width))
        lines.append(_row("composed", [f"{100 * v:.1f}" for v in composed[name]], width))
    return "\n".join(lines)


def scalar_table(real: dict, composed: dict) -> str:
    rows = [
        ("pieces", "{:.0f}"),
        ("steps", "{:.0f}"),
        ("four_voice_share", "{:.3f}"),
        ("silent_share", "{:.3f}"),
        ("notes_per_step", "{:.2f}"),
        ("key_correlation", "{:.3f}"),
        ("diatonic_share", "{:.3f}"),
        ("home_key_share", "{:.3f}"),
        ("top_pitch", "{:.1f}"),
        ("bottom_pitch", "{:.1f}"),
        ("struck_m2_M7", "{:.4f}"),
        ("struck_M2_m7", "{:.4f}"),
        ("parallel_5ths", "{:.4f}"),
        ("parallel_8ves", "{:.4f}"),
    ]
    lines = [f"  {'':<18}{'real':>10}{'composed':>10}"]
    for key, fmt in rows:
        lines.append(f"  {key:<18}{fmt.format(real[key]):>10}{fmt.format(composed[key]):>10}")
    return "\n".join(lines)


def classifier_test(real, composed, args, *, lowest: int, steps_per_beat: int) -> dict:
    """Accuracy and floor (means and deviations over the repeats) and the windows used."""
    bar = midi.steps_per_bar(4, 4, steps_per_beat)
    window, stride = args.window_bars * bar, args.stride_bars * bar
    x_real, g_real = stats.window_features(
        real, window=window, stride=stride, steps_per_beat=steps_per_beat
    )
    x_comp, g_comp = stats.window_features(
        composed, window=window, stride=stride, lowest=lowest, steps_per_beat=steps_per_beat
    )
    options = dict(folds=args.folds, l2=args.l2)
    accuracies = [
        stats.two_sample_accuracy(x_comp, g_comp, x_real, g_real, seed=s, **options)
        for s in range(args.repeats)
    ]
    floors = [
        stats.split_half_accuracy(x_real, g_real, seed=s, **options) for s in range(args.repeats)
    ]
    # What gives the composed windows away: the largest weights of one model fitted on all the
    # windows (balanced), on standardised features.
    rng = np.random.default_rng(0)
    size = min(len(x_real), len(x_comp))
    x = np.vstack(
        [
            x_comp[rng.choice(len(x_comp), size, replace=False)],
            x_real[rng.choice(len(x_real), size, replace=False)],
        ]
    )
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    weights, _ = stats.fit_logistic(
        (x - x.mean(axis=0)) / scale, np.repeat([0.0, 1.0], size), l2=args.l2
    )
    names = stats.window_feature_names()
    telling = [(names[i], weights[i]) for i in np.argsort(-np.abs(weights))[:6]]
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_sd": float(np.std(accuracies)),
        "floor": float(np.mean(floors)),
        "floor_sd": float(np.std(floors)),
        "windows": (len(x_real), len(x_comp)),
        "window": window,
        "stride": stride,
        "telling": telling,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.composed is not None:
        composed = load_folder(args.composed, 4, "--composed")
        lowest, steps_per_beat = midi.DEFAULT_LOWEST, composed[0].steps_per_beat
        source = f"{len(composed)} MIDI files of {args.composed}"
    else:
        composed, lowest, steps_per_beat, seconds = compose(args)
        checkpoint = args.checkpoint or "the bundled model"
        source = (
            f"{args.pieces} x {args.steps} steps composed with {checkpoint} in {seconds:.1f} s "
            f"(seed {args.seed}, temperature {args.temperature:g}, "
            f"adaptive rule {'on' if args.adaptive else 'off'})"
        )
    real_folder = args.real or data.BUNDLED_CHORALES
    real = load_folder(real_folder, steps_per_beat, "--real")
    print(f"composed: {source}")
    print(f"real:     {len(real)} pieces of {real_folder}")

    options = dict(lowest=lowest, steps_per_beat=steps_per_beat)
    real_hists, comp_hists = stats.histograms(real), stats.histograms(composed, **options)
    tv = stats.distances(comp_hists, real_hists)
    real_scalars, comp_scalars = stats.scalars(real), stats.scalars(composed, **options)
    # Seconds and sevenths struck together, and parallel fifths and octaves (neither among the
    # classifier's features): what a harmony teacher would mark first
    for side, music in ((real_scalars, real), (comp_scalars, composed)):
        clashes = stats.clash_shares(stats.struck_intervals(music, lowest=lowest))
        side.update({f"struck_{name}": share for name, share in clashes.items()})
        perfects = stats.parallel_perfects(music, lowest=lowest)
        side.update(parallel_5ths=perfects["fifths"], parallel_8ves=perfects["octaves"])
    print()
    print(histogram_table(real_hists, comp_hists, tv))
    print()
    print(scalar_table(real_scalars, comp_scalars))

    test = classifier_test(real, composed, args, lowest=lowest, steps_per_beat=steps_per_beat)
    print()
    print(
        f"classifier test: windows of {test['window']} steps every {test['stride']} "
        f"({test['windows'][0]} real, {test['windows'][1]} composed), {args.folds} folds grouped "
        f"by piece, {args.repeats} repeats, L2 {args.l2:g}"
    )
    print(
        f"  accuracy {test['accuracy']:.3f} +- {test['accuracy_sd']:.3f} (0.5 = indistinguishable)"
    )
    print(
        f"  floor    {test['floor']:.3f} +- {test['floor_sd']:.3f} (two halves of the real pieces)"
    )
    print("  what tells them apart most (standardised weight; > 0 = more in the real pieces):")
    for name, weight in test["telling"]:
        print(f"    {name:<32}{weight:+.2f}")

    if args.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        from musicutils._io import atomic_open

        fig = stats.plot_comparison({"real": real, "composed": composed}, **options)
        with atomic_open(args.figure, "wb") as out:
            fig.savefig(out, format=args.figure.suffix[1:].lower(), dpi=100)
        print(f"wrote {args.figure}")
    print(f"total time {time.perf_counter() - started:.1f} s")
    print(
        f"classifier_accuracy={test['accuracy']:.3f} floor={test['floor']:.3f} "
        f"four_voice_share={comp_scalars['four_voice_share']:.3f} "
        f"silent_share={comp_scalars['silent_share']:.3f} "
        + " ".join(f"tv_{name}={tv[name]:.3f}" for name in LAST_LINE_DISTANCES)
    )


if __name__ == "__main__":
    main()
