"""The quick-start job behind `make demo` (`python -m musicutils demo --out out`).

Reads the bundled chorales, prints the corpus summary, and for one chorale writes its piano
roll, a WAV rendering and a round-tripped MIDI file into the output folder; then composes eight
bars with the pretrained model (or `checkpoint`): composed.mid, composed.png, composed.wav.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import audio, data, midi, plotting
from .errors import DataError, MidiError

__all__ = ["run"]

#: The chorale the demo shows when it is in the folder (else the first piece).
DEMO_CHORALE = "bwv269"


def run(
    out_dir: str | os.PathLike = "out",
    data_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> int:
    """Run the demo; returns an exit status (0 on success).

    Args:
        out_dir: folder for the outputs (created if needed).
        data_dir: MIDI folder to summarise; default the bundled chorales.
        checkpoint: a run folder to compose with (default: the bundled pretrained/ model).

    Raises:
        DataError: the folder has no readable MIDI file.
        MidiError: the round trip of the chosen piece changed it (a bug in `midi`).
    """
    out_dir = Path(out_dir)
    folder = Path(data_dir) if data_dir is not None else data.bundled_chorales_dir()
    corpus = data.load_corpus(folder)
    print(corpus.summary())
    if not len(corpus):
        raise DataError(f"{folder}: no readable MIDI files")
    out_dir.mkdir(parents=True, exist_ok=True)
    index = next((i for i, p in enumerate(corpus.paths) if p.stem == DEMO_CHORALE), 0)
    written = _show_one(corpus.pieces[index], corpus.paths[index].stem, out_dir)
    from . import generate  # TensorFlow loads here, after the light steps

    model_name = checkpoint or "the bundled pretrained model"
    print(f"\ncomposing 8 bars with {model_name} (seed 0)")
    written += generate.compose_demo(out_dir, checkpoint)
    print("\nwrote:")
    for path in written:
        print(f"  {path}")
    return 0


def _show_one(piece: midi.Piece, stem: str, out_dir: Path) -> list[Path]:
    """Piano roll, WAV and a verified MIDI round trip of one piece."""
    print(f"\n{midi.describe(piece)}")
    roll = plotting.save_piano_roll(piece, out_dir / f"{stem}_roll.png")
    wav = audio.write_wav(piece, out_dir / f"{stem}.wav")
    roundtrip = midi.write(piece, out_dir / f"{stem}_roundtrip.mid")
    again = midi.read(
        roundtrip, steps_per_beat=piece.steps_per_beat, lowest=piece.lowest, highest=piece.highest
    )
    same = (
        np.array_equal(again.state, piece.state)
        and again.tempos == piece.tempos
        and again.meters == piece.meters
    )
    if not same:
        raise MidiError(f"{roundtrip.name}: the round trip changed the piece")
    print(
        f"round trip: {roundtrip.name} reads back identical "
        f"({piece.note_count} notes, {piece.n_steps} steps)"
    )
    return [roll, wav, roundtrip]
