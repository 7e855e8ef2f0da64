"""Strip a notebook to what we commit: outputs of `# NBVAL_CHECK_OUTPUT` cells (nbval compares
them) and, with --keep-images, small PNG figures. Audio, HTML, progress bars, stderr and
training logs are removed so notebooks stay small and diffs stay readable.

    python scripts/clean_notebook.py notebooks/01_midi_parsing.ipynb [--keep-images]
"""

import argparse
import json
from pathlib import Path

from musicutils._io import atomic_open

MAX_IMAGE_BYTES = 120_000


def clean(nb: dict, keep_images: bool) -> dict:
    code_cells = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        code_cells += 1
        source = "".join(cell["source"])
        checked = "NBVAL_CHECK_OUTPUT" in source
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            if checked:
                kept.append(out)
            elif keep_images and "image/png" in out.get("data", {}):
                if len(out["data"]["image/png"]) <= MAX_IMAGE_BYTES:
                    keep = ("image/png", "text/plain")
                    out["data"] = {k: v for k, v in out["data"].items() if k in keep}
                    kept.append(out)
        cell["outputs"] = kept
        # nbval fails a cell that has outputs but no execution count ("Unrun reference cell has
        # outputs"), so cells keeping outputs get the count of a clean top-to-bottom run.
        cell["execution_count"] = code_cells if kept else None
        for out in kept:
            if "execution_count" in out:
                out["execution_count"] = cell["execution_count"]
        cell.get("metadata", {}).pop("execution", None)
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--keep-images", action="store_true")
    args = parser.parse_args()
    for path in args.notebooks:
        nb = clean(json.loads(path.read_text()), args.keep_images)
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
