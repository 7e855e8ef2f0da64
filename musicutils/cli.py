"""Command line: `python -m musicutils COMMAND ...`.

A thin argparse layer over the package. Each handler imports what it needs when it runs, so
`info`, `roll` and `render` never load TensorFlow. Errors we raise on purpose
(`MusicutilsError`) and file-system errors become one line `error: ...` on stderr and exit
status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from ._checks import RANGES
from .errors import MusicutilsError

EXIT_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with our error format: one line on stderr, exit status 2 (no usage block)."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"error: {message} (see {self.prog} --help)\n")


class InRange:
    """An argparse type: a number in `_checks.RANGES[kind]`; NaN, infinities, values too large
    and values outside the range are usage errors that name the allowed range."""

    def __init__(self, kind: str):
        self.kind = kind
        self.range = RANGES[kind]

    def __call__(self, text: str):
        try:
            value = int(text) if self.range.integer else float(text)
        except ValueError:
            value = None
        parsed = None if value is None else self.range.parse(value)
        if parsed is None:
            raise argparse.ArgumentTypeError(f"expected {self.range}, got {text!r}")
        return parsed


class LayerSizes(InRange):
    """An argparse type: comma-separated layer sizes, each in RANGES["layer_size"]."""

    def __init__(self):
        super().__init__("layer_size")

    def __call__(self, text: str) -> list[int]:
        parts = [part for part in text.split(",") if part.strip()]
        try:
            sizes = [super(LayerSizes, self).__call__(part.strip()) for part in parts]
        except argparse.ArgumentTypeError:
            sizes = []
        if not sizes:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated layer sizes, each {self.range}, got {text!r}"
            )
        return sizes


# ---------------------------------------------------------------------------------------------
# Handlers. Each returns an exit status.


def _cmd_info(args: argparse.Namespace) -> int:
    from . import midi

    status = 0
    for i, path in enumerate(args.files):
        try:
            piece = midi.read(path)
        except (MusicutilsError, OSError) as exc:
            _error(_reason(exc))  # MidiError messages start with the file name already
            status = EXIT_ERROR
            continue
        if i:
            print()
        print(midi.describe(piece))
    return status


def _cmd_roll(args: argparse.Namespace) -> int:
    from . import midi, plotting

    piece = midi.read(args.file)
    plotting.save_piano_roll(piece, args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from . import audio, midi

    piece = midi.read(args.file)
    audio.write_wav(piece, args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.run(out_dir=args.out, data_dir=args.data, checkpoint=args.checkpoint)


def _cmd_train(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from ._lock import run_lock

    # A run folder that another process trains in is refused before TensorFlow loads (about a
    # second); `train` takes the same lock (shared within this process) for a new folder.
    with run_lock(args.out) if args.out.is_dir() else nullcontext():
        from . import train

        train.train_from_args(args)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import train

    train.evaluate_from_args(args)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from . import generate

    generate.generate_from_args(args)
    return 0


def _reason(exc: BaseException) -> str:
    """One line for the user; our own errors already name the file at fault."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror.lower()}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Parser.


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m musicutils",
        description="Read, view, hear, train on and compose polyphonic music (biaxial LSTM).",
    )
    parser.add_argument("--version", action="version", version=f"musicutils {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summarise MIDI files (tempo, meter, steps, notes, range)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_cmd_info)

    p = sub.add_parser("roll", help="draw a MIDI file's piano roll to a PNG")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--out", required=True, type=Path, metavar="PNG")
    p.set_defaults(handler=_cmd_roll)

    p = sub.add_parser("render", help="synthesise a MIDI file to a WAV (no soundfont needed)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--out", required=True, type=Path, metavar="WAV")
    p.set_defaults(handler=_cmd_render)

    p = sub.add_parser("demo", help="the quick-start job behind `make demo`")
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="MIDI folder to summarise (default: the bundled chorales)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="model to compose with (default: the bundled pretrained model)",
    )
    p.set_defaults(handler=_cmd_demo)

    p = sub.add_parser("train", help="train a biaxial model; re-run the same command to resume")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="DIR_OR_PICKLE",
        help="a folder of MIDI files or a benchmark pickle",
    )
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR")
    p.add_argument("--epochs", type=InRange("epochs"), default=50)
    p.add_argument("--steps-per-epoch", type=InRange("steps_per_epoch"), default=100)
    p.add_argument("--batch-size", type=InRange("batch_size"), default=10)
    p.add_argument(
        "--segment-length",
        type=InRange("segment_length"),
        default=128,
        help="time steps per example",
    )
    p.add_argument("--time-sizes", type=LayerSizes(), default=[300, 300], metavar="300,300")
    p.add_argument("--note-sizes", type=LayerSizes(), default=[100, 50], metavar="100,50")
    p.add_argument(
        "--chord-below",
        action="store_true",
        help="give the note axis the chord chosen so far at each step (not in Johnson's model)",
    )
    p.add_argument(
        "--struck-below",
        action="store_true",
        help="also give the note axis the notes below struck at each step (not in Johnson's "
        "model; with --chord-below it tells a chord struck together from notes held into it)",
    )
    p.add_argument("--dropout", type=InRange("dropout"), default=0.5)
    p.add_argument("--learning-rate", type=InRange("learning_rate"), default=1e-3)
    p.add_argument(
        "--ema",
        type=InRange("ema"),
        default=0.0,
        metavar="M",
        help="validate and keep a moving average of the weights, momentum M per batch "
        "(e.g. 0.99; default 0: off)",
    )
    p.add_argument(
        "--transpose",
        type=InRange("transpose"),
        default=0,
        metavar="K",
        help="augment by random transposition within +-K semitones",
    )
    p.add_argument(
        "--validation-split",
        type=InRange("validation_split"),
        default=0.1,
        help="fraction of pieces held out (MIDI folders; pickles use their own split)",
    )
    p.add_argument(
        "--patience",
        type=InRange("patience"),
        default=10,
        help="early stopping: epochs without validation improvement",
    )
    p.add_argument("--seed", type=InRange("seed"), default=0)
    p.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multiworker"],
        default="default",
        help="multiworker: train on several machines, the same command on each, with TF_CONFIG "
        "naming them (README)",
    )
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "auto"],
        default="float32",
        help="of the matrix products (weights, LSTM cells and loss stay float32); auto: "
        "bfloat16 where the CPU (avx512_bf16, AMX) or GPU (compute capability 8+) has it",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="MODEL_DIR",
        help="start a new run from this model's weights (a run folder, or pretrained: the "
        "bundled model, to fine-tune it on your music); give its sizes and inputs too, and a "
        "lower --learning-rate (1e-4): the optimizer starts afresh",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser("evaluate", help="negative log-likelihood of a checkpoint on data")
    p.add_argument("--checkpoint", required=True, type=Path, metavar="RUN_DIR")
    p.add_argument("--data", required=True, type=Path, metavar="PATH")
    p.add_argument(
        "--split",
        choices=["train", "valid", "test", "all"],
        default=None,
        help="pickle: train/valid/test (default test); MIDI folder: valid/train of "
        "the folder the run trained on (default valid), all for another folder",
    )
    p.add_argument("--batch-size", type=InRange("batch_size"), default=8)
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "auto"],
        default=None,
        help="of the matrix products (default: the precision the model trained in)",
    )
    p.set_defaults(handler=_cmd_evaluate)

    p = sub.add_parser("generate", help="compose new music with a trained model")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="run folder (default: the bundled pretrained model)",
    )
    p.add_argument("--steps", type=InRange("steps"), default=256)
    p.add_argument("--out", required=True, type=Path, metavar="OUT.mid")
    p.add_argument("--batch-size", type=InRange("batch_size"), default=1)
    p.add_argument("--seed", type=InRange("seed"), default=None)
    p.add_argument("--temperature", type=InRange("temperature"), default=1.0)
    p.add_argument(
        "--no-adaptive",
        dest="adaptive",
        action="store_false",
        help="turn off the anti-silence rule",
    )
    p.add_argument(
        "--voices",
        type=InRange("voices"),
        default=None,
        help="the voice rule: keep, of --draws draws of each step, the first whose number of "
        "sounding notes is closest to this (default: the model's own, 4 for the bundled "
        "chorale model; 0: off)",
    )
    p.add_argument(
        "--draws",
        type=InRange("draws"),
        default=2,
        help="draws per step for the voice rule (default 2)",
    )
    p.add_argument(
        "--allow-parallels",
        dest="avoid_parallels",
        action="store_false",
        help="the voice rule keeps the first draw closest to --voices even where another, as "
        "close, does not move in parallel fifths or octaves",
    )
    p.add_argument(
        "--primer",
        type=Path,
        default=None,
        metavar="FILE",
        help="a MIDI file whose music the composition continues",
    )
    p.add_argument("--png", action="store_true", help="also write a piano-roll PNG")
    p.add_argument("--wav", action="store_true", help="also write a WAV rendering")
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "auto"],
        default=None,
        help="of the matrix products (default: the precision the model trained in)",
    )
    p.set_defaults(handler=_cmd_generate)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (MusicutilsError, OSError) as exc:
        _error(_reason(exc))
        return EXIT_ERROR
    except KeyboardInterrupt as exc:  # Ctrl-C; `train` says what is saved and how to resume
        _error(str(exc) or "interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
