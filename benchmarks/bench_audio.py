"""Time `musicutils.audio.render` on the longest bundled chorale (the synthesiser's speed).

Usage:
    python benchmarks/bench_audio.py [--repeats 5]

The unit tests check what it renders; how fast is measured here, where a loaded machine cannot
fail a test. One untimed warm-up render, then the median of `--repeats` renders. The last line
is machine-readable: ``render_seconds=... music_seconds=... realtime_factor=...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from musicutils import audio, data, midi  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    corpus = data.load_corpus(data.bundled_chorales_dir(), cache=False, progress=False)
    piece = max(corpus.pieces, key=midi.duration_seconds)
    audio.render(piece)  # warm-up
    seconds = []
    for _ in range(max(1, args.repeats)):
        started = time.perf_counter()
        wave = audio.render(piece)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    music = len(wave) / audio.SAMPLE_RATE
    print(f"piece: {piece.name}, {piece.note_count} notes, {music:.1f} s of music")
    print(f"render: median {median:.3f} s over {len(seconds)} runs")
    factor = music / median
    print(f"render_seconds={median:.4f} music_seconds={music:.1f} realtime_factor={factor:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
