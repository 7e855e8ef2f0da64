"""Export Bach's four-part chorales from music21's bundled corpus to MIDI files.

    python scripts/build_dataset.py                    # the first 30 -> data/chorales/
    python scripts/build_dataset.py --all --out DIR    # all 371 (Riemenschneider numbering)
    python scripts/build_dataset.py --all --skip 30 --out DIR   # all but the bundled 30

music21 is a development dependency only: the exported MIDI files are committed, so users never
need it. Chorales are taken in Riemenschneider order (music21's `corpus.chorales.Iterator`), so
the default 30 are always the same ones. Each file is named after its BWV catalogue number
(`bwv269.mid`; `bwv248.12-2.mid` for the second setting in BWV 248 no. 12).

What each file keeps:
- one track per voice (Soprano, Alto, Tenor, Bass, plus any instrumental part), each on its own
  channel 0..n-1 (never channel 9, the drum channel), named after the part;
- the meter, including the pickup bar: an anacrusis is written as a short bar of its own (a 1/4
  bar before the 3/4 ones, say), so bar lines fall where Bach's do without leading silence;
- the tempo when the encoding has a metronome mark (8 of the ~350 do); otherwise `--bpm`,
  default 80 quarter notes per minute;
- notes with ties merged, on a 480-ticks-per-quarter grid (every chorale rhythm, triplets
  included, lands exactly on it).
Chorales that fail to export are reported and skipped; the exit status is 1 only if none worked.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import mido

from musicutils._io import atomic_open

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "data" / "chorales"
DEFAULT_COUNT = 30
TICKS_PER_BEAT = 480
VELOCITY = 80


def chorale_names() -> list[str]:
    """Corpus names ('bach/bwv269', ...) of the 371 chorales, in Riemenschneider order."""
    from music21 import corpus

    return list(corpus.chorales.Iterator(returnType="filename"))


def _ticks(quarter_length) -> int:
    """Quarter notes (float or Fraction) to ticks, rounded to the nearest tick."""
    return round(Fraction(quarter_length).limit_denominator(10_000) * TICKS_PER_BEAT)


def _pickup_meter(pickup_quarters: Fraction) -> tuple[int, int]:
    """A time signature exactly as long as a pickup: 1 quarter -> 1/4, 1.5 -> 3/8, 0.75 -> 3/16."""
    denominator = 4
    while (pickup_quarters * denominator / 4).denominator != 1 and denominator < 64:
        denominator *= 2
    numerator = pickup_quarters * denominator / 4
    if numerator.denominator != 1:
        raise ValueError(f"pickup of {pickup_quarters} quarter notes has no simple meter")
    return int(numerator), denominator


def score_to_midi(score, *, bpm: float = 80.0) -> mido.MidiFile:
    """Convert a music21 Score of a chorale to a type-1 MIDI file (see the module docstring)."""
    from music21 import meter, tempo

    parts = [p for p in score.parts if p.flatten().notes]
    if not parts:
        raise ValueError("no notes")
    first_part = parts[0]
    measures = list(first_part.getElementsByClass("Measure"))
    pickup = Fraction(0)
    if measures and measures[0].paddingLeft:
        pickup = Fraction(measures[0].duration.quarterLength).limit_denominator(10_000)

    # Conductor track: meters and tempi, taken from the first part (all parts agree in chorales).
    flat = first_part.flatten()
    meters = [
        (_ticks(ts.offset), ts.numerator, ts.denominator)
        for ts in flat.getElementsByClass(meter.TimeSignature)
    ]
    if not meters:
        meters = [(0, 4, 4)]
    if pickup and meters[0][0] == 0:
        num, den = _pickup_meter(pickup)
        meters = [(0, num, den), (_ticks(pickup), meters[0][1], meters[0][2])] + meters[1:]
    marks = [
        (_ticks(mm.offset), mm.getQuarterBPM())
        for mm in flat.getElementsByClass(tempo.MetronomeMark)
        if mm.getQuarterBPM()
    ]
    if not marks or marks[0][0] != 0:
        marks = [(0, bpm)] + marks

    events: list[tuple[int, int, mido.MetaMessage]] = []
    for tick, num, den in meters:
        events.append(
            (tick, 0, mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
        )
    for tick, quarter_bpm in marks:
        events.append(
            (tick, 1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(quarter_bpm), time=0))
        )
    title = (score.metadata.title if score.metadata else None) or ""
    conductor = [mido.MetaMessage("track_name", name=title, time=0)] if title else []
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(_delta_track(conductor, events))

    for channel, part in enumerate(parts[:15]):
        if channel == 9:  # never the General MIDI drum channel
            break
        notes = []
        for element in part.flatten().stripTies().notes:
            start = _ticks(element.offset)
            end = _ticks(element.offset + element.quarterLength)
            if end <= start:  # grace notes have no duration: leave them out
                continue
            for pitch in getattr(element, "pitches", ()):
                notes.append((start, end, int(pitch.midi)))
        events = []
        for start, end, pitch in notes:
            # Sort key: note_off (0) before note_on (1) at the same tick, so a repeated note
            # is ended before it is struck again.
            events.append(
                (
                    start,
                    1,
                    mido.Message("note_on", channel=channel, note=pitch, velocity=VELOCITY, time=0),
                )
            )
            events.append(
                (end, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=0))
            )
        name = part.partName or part.id or f"Part {channel + 1}"
        header = [mido.MetaMessage("track_name", name=str(name), time=0)]
        midi.tracks.append(_delta_track(header, events))
    return midi


def _delta_track(header: list, events: list[tuple[int, int, object]]) -> mido.MidiTrack:
    """Absolute-time events (tick, order, message) -> a MidiTrack with delta times."""
    track = mido.MidiTrack(header)
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1], getattr(e[2], "note", 0))):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _musicxml_file(name: str) -> Path:
    """The MusicXML encoding of a corpus work. A few chorales also ship as Humdrum (.krn) files
    from CCARH, which reserve rights to derived formats: we never convert those."""
    from music21 import corpus

    found = corpus.getWork(name)
    paths = [Path(p) for p in (found if isinstance(found, list) else [found])]
    xml = [p for p in paths if p.suffix in (".mxl", ".xml", ".musicxml")]
    if not xml:
        raise ValueError(f"no MusicXML encoding (found {[p.name for p in paths]})")
    return xml[0]


def export(names: list[str], out: Path, *, bpm: float = 80.0) -> tuple[list[Path], list[str]]:
    """Export corpus chorales to `out`; returns (written paths, 'name: reason' failures)."""
    from music21 import corpus

    out.mkdir(parents=True, exist_ok=True)
    written, failed, seen = [], [], set()
    for name in names:
        stem = name.split("/")[-1]
        if stem in seen:  # the same setting listed under two numbers
            continue
        seen.add(stem)
        try:
            midi = score_to_midi(corpus.parse(_musicxml_file(name)), bpm=bpm)
        except Exception as exc:  # noqa: BLE001 - a bad encoding must not stop the export
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        path = out / f"{stem}.mid"
        with atomic_open(path) as file:
            midi.save(file=file)
        written.append(path)
    return written, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the .mid files")
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help="how many chorales, in Riemenschneider order (default 30)",
    )
    parser.add_argument(
        "--all", action="store_true", help="export all 371 (about 350 distinct settings)"
    )
    parser.add_argument(
        "--skip",
        type=int,
        default=0,
        help="leave out the first N in Riemenschneider order (--skip 30: all but the bundled 30, "
        "which the bundled model holds out for bench_music.py)",
    )
    parser.add_argument(
        "--bpm",
        type=float,
        default=80.0,
        help="tempo written when the encoding has none (quarter notes per minute)",
    )
    args = parser.parse_args(argv)
    try:
        import music21  # noqa: F401
    except ImportError:
        print("error: music21 is needed: pip install -r requirements-dev.txt", file=sys.stderr)
        return 2
    if args.count < 1 or args.skip < 0:
        parser.error("--count must be at least 1 and --skip at least 0")
    names = chorale_names()
    # Riemenschneider lists a few settings twice: a skipped setting must not come back later.
    skipped = set(names[: args.skip])
    names = [name for name in names[args.skip :] if name not in skipped]
    if not args.all:
        names = names[: args.count]
    written, failed = export(names, args.out, bpm=args.bpm)
    size = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} MIDI files ({size / 1024:.0f} KiB) to {args.out}")
    for line in failed:
        print(f"skipped {line}", file=sys.stderr)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
