"""Loading large MIDI folders: time and peak memory per file, 2,000 and 20,000 files.

    .venv/bin/python benchmarks/bench_corpus.py [--counts 2000,20000] [--no-reference]

For each count N it writes a folder of N MIDI files made from the 30 bundled chorales, each
transposed (-6..+5 semitones) and sliced (a window of 32-128 steps starting on a bar line),
and then loads it with `musicutils.data.load_corpus`, each load in a fresh child process whose
peak resident memory (VmHWM) and wall time are measured:

- cold: parse every file into the cache (states streamed to disk, one piece in memory at a
  time), then open it;
- warm: open the cache again (nothing parsed: the index, and the states memory-mapped);
- warm + read: the same, then read every piece's states once (sum the notes), which maps
  every page of the states file into the process; those pages are file-backed, so the
  operating system can drop them again under memory pressure;
- reference (without `--no-reference`): `cache=False`, every piece parsed into memory, the
  way a folder is read without a cache.

A child that imports `musicutils.data` and loads nothing gives the baseline that the per-file
figures subtract. Ends with one line per count:
`files=N cold_ms_per_file=A warm_ms_per_file=B cold_peak_mb=C warm_peak_mb=D
reference_peak_mb=E baseline_mb=F`. The load average is printed: on a shared machine the
times move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from musicutils import data, midi  # noqa: E402

CHILD = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from musicutils import data
mode, folder, cache = sys.argv[1], sys.argv[2], sys.argv[3]
imported = time.perf_counter()
pieces = 0
notes = 0
if mode != "baseline":
    corpus = data.load_corpus(folder, cache=mode != "reference", cache_dir=cache, progress=False)
    pieces = len(corpus)
    if mode == "read":
        notes = int(sum(int(p.state[..., 1].sum()) for p in corpus))
done = time.perf_counter()
peak = [int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines()
        if l.startswith("VmHWM:")][0] / 1024
print(json.dumps({"seconds": done - imported, "peak_mb": peak, "pieces": pieces, "notes": notes}))
"""


def variants(rng: np.random.Generator, count: int) -> list[midi.Piece]:
    """`count` pieces cut from the bundled chorales: transposed, windowed on bar lines."""
    chorales = data.load_corpus(data.bundled_chorales_dir(), cache=False, progress=False).pieces
    out = []
    for i in range(count):
        piece = chorales[i % len(chorales)]
        shift = int(rng.integers(-6, 6))
        bar = piece.steps_per_beat * 4
        length = int(rng.integers(2, 9)) * 16  # 32..128 steps
        last_start = max(0, (piece.n_steps - length) // bar)
        start = int(rng.integers(0, last_start + 1)) * bar
        state = np.roll(piece.state[start : start + length], shift, axis=1)
        if shift > 0:
            state[:, :shift] = 0
        elif shift < 0:
            state[:, shift:] = 0
        out.append(
            midi.Piece(
                state=np.ascontiguousarray(state),
                lowest=piece.lowest,
                steps_per_beat=piece.steps_per_beat,
                tempos=[(0, piece.tempos[0][1])],
                meters=[(0, *piece.meters[0][1:])],
                name=f"variant {i}",
            )
        )
    return out


def make_folder(folder: Path, count: int, seed: int = 0) -> None:
    """Write `count` MIDI files (in subfolders of 1000) made from 600 distinct variants."""
    rng = np.random.default_rng(seed)
    distinct = variants(rng, min(count, 600))
    blobs = []
    with tempfile.TemporaryDirectory() as scratch:
        for i, piece in enumerate(distinct):
            path = midi.write(piece, Path(scratch) / f"{i}.mid")
            blobs.append(Path(path).read_bytes())
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"piece_{i:05d}.mid").write_bytes(blobs[i % len(blobs)])


def measure(mode: str, folder: Path, cache: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(folder), str(cache)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="2000,20000", help="folder sizes (files)")
    parser.add_argument("--no-reference", action="store_true", help="skip cache=False loads")
    parser.add_argument("--keep", type=Path, default=None, help="build the folders here")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",") if c]

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as scratch:
        work = args.keep or Path(scratch)
        for count in counts:
            folder, cache = work / f"midi-{count}", work / f"cache-{count}"
            start = time.perf_counter()
            make_folder(folder, count)
            size = sum(p.stat().st_size for p in folder.rglob("*.mid"))
            print(
                f"{count} files, {size / 1e6:.1f} MB of MIDI, written in "
                f"{time.perf_counter() - start:.1f} s",
                flush=True,
            )
            results = {"baseline": measure("baseline", folder, cache)}
            for mode in ("cold", "warm", "read") + (() if args.no_reference else ("reference",)):
                results[mode] = measure(mode, folder, cache)
                r = results[mode]
                assert r["pieces"] == count, r
                print(
                    f"  {mode:<9} {r['seconds']:7.2f} s ({r['seconds'] / count * 1e3:6.2f} "
                    f"ms per file), peak {r['peak_mb']:7.1f} MB "
                    f"({(r['peak_mb'] - results['baseline']['peak_mb']) / count * 1e3:6.1f} "
                    "kB per file above the baseline)",
                    flush=True,
                )
            states = sum(p.stat().st_size for p in cache.glob("*.states"))
            index = sum(p.stat().st_size for p in cache.glob("*.npz"))
            print(
                f"  cache: states {states / 1e6:.1f} MB, index {index / 1e6:.1f} MB; "
                f"baseline (import only) {results['baseline']['peak_mb']:.1f} MB",
                flush=True,
            )
            reference = results.get("reference", {}).get("peak_mb", float("nan"))
            lines.append(
                f"files={count} cold_ms_per_file={results['cold']['seconds'] / count * 1e3:.3f} "
                f"warm_ms_per_file={results['warm']['seconds'] / count * 1e3:.3f} "
                f"cold_peak_mb={results['cold']['peak_mb']:.1f} "
                f"warm_peak_mb={results['warm']['peak_mb']:.1f} "
                f"reference_peak_mb={reference:.1f} "
                f"baseline_mb={results['baseline']['peak_mb']:.1f}"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
