"""Time `musicutils.midi.read` against pretty_midi on the same MIDI files, in the same run.

Usage:
    python benchmarks/bench_midi.py [--data DIR] [--repeats 5] [--steps-per-beat 4]

Ours: `midi.read(path)` (parse with mido, pair notes, paint the (T, N, 2) state).
Theirs: `pretty_midi.PrettyMIDI(path)` + `get_piano_roll(fs=...)` with one column per step at
the file's first tempo, the closest like-for-like product. Each side reads every file once
per repeat; the figure is the median over repeats of the total seconds. Default data:
data/chorales/ of this repository; if it is missing, ~30 Bach chorales are exported from
music21's bundled corpus to a temporary folder. The last line is machine-readable:
``read_seconds=... pretty_midi_seconds=... speedup=...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from musicutils import midi  # noqa: E402


def _export_chorales(folder: Path, count: int = 30) -> list[Path]:
    """Write `count` Bach chorales from music21's bundled corpus as MIDI into `folder`."""
    from music21 import corpus

    paths = []
    for source in corpus.getComposer("bach"):
        if len(paths) == count:
            break
        try:
            score = corpus.parse(source)
            target = folder / f"{Path(source).stem}.mid"
            score.write("midi", fp=str(target))
        except Exception:  # some corpus entries are not chorales or fail to export: skip
            continue
        paths.append(target)
    return paths


def _time_once(function, paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        function(path)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO / "data" / "chorales",
        help="folder of .mid files (default: data/chorales)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per reader")
    parser.add_argument("--steps-per-beat", type=int, default=4)
    args = parser.parse_args(argv)

    import pretty_midi

    with tempfile.TemporaryDirectory() as scratch:
        paths = sorted(args.data.glob("*.mid")) if args.data.is_dir() else []
        source = str(args.data)
        if not paths:
            paths = _export_chorales(Path(scratch))
            source = "music21's Bach corpus (exported to a temporary folder)"
        if not paths:
            print("no MIDI files to time", file=sys.stderr)
            return 1

        def ours(path: Path) -> None:
            midi.read(path, steps_per_beat=args.steps_per_beat)

        def theirs(path: Path) -> None:
            pm = pretty_midi.PrettyMIDI(str(path))
            bpm = pm.get_tempo_changes()[1][:1]
            fs = (bpm[0] if len(bpm) else 120.0) / 60 * args.steps_per_beat
            pm.get_piano_roll(fs=fs)

        steps = sum(midi.read(p, steps_per_beat=args.steps_per_beat).n_steps for p in paths)
        ours_times, theirs_times = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            ours_times.append(_time_once(ours, paths))
            theirs_times.append(_time_once(theirs, paths))

    ours_median = statistics.median(ours_times)
    theirs_median = statistics.median(theirs_times)
    print(f"files: {len(paths)} from {source}, {steps} steps in all")
    print(f"repeats: {args.repeats} (median of the total time per pass)")
    print(
        f"musicutils.midi.read:           {ours_median * 1000:8.1f} ms "
        f"({ours_median / len(paths) * 1000:.2f} ms per file)"
    )
    print(
        f"pretty_midi load + piano roll:  {theirs_median * 1000:8.1f} ms "
        f"({theirs_median / len(paths) * 1000:.2f} ms per file)"
    )
    print(
        f"read_seconds={ours_median:.4f} pretty_midi_seconds={theirs_median:.4f} "
        f"speedup={theirs_median / ours_median:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
