#!/usr/bin/env python3
"""Writes scenes of a trained task as PNG files, for evaluation outside Python
(the TypeScript accuracy/cost evaluation sends them to the server).

    python3 training/scenes.py --task digits --split test --count 300 --out DIR

DIR/NNNN.png        the image as an 8-bit grey PNG: exactly the bytes a client
                    would upload; the server reads pixel v as v / 255, which is
                    bit for bit the float image the Python evaluation uses
DIR/NNNN-label.png  the ground truth as an 8-bit grey PNG, pixel value = class
                    index (same size as the image)
DIR/scenes.json     task, split, seed, classes, size and file names

NNNN is the scene index, zero-padded to 4 digits (scenes --start … start+count-1).
Deterministic: scene i of split `test` is `data.scene(task, "test", 2026, i)`,
the i-th scene of `data.test_set(task)` (the held-out split every test mIoU
in docs/MODELS.md is measured on: its first 500 scenes). Validation (`val`,
seed 1) and training (`train`, seed 0) scenes can be written the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
from png import write_png  # noqa: E402

DEFAULT_SEEDS = {"train": 0, "val": 1, "test": data.TEST_SEED}


def write_scenes(task: str, split: str, count: int, out: Path, seed: int | None = None, start: int = 0) -> dict:
    seed = DEFAULT_SEEDS[split] if seed is None else seed
    out.mkdir(parents=True, exist_ok=True)
    images, labels = data.generate(task, split, seed, count, start=start)
    files = []
    for k in range(count):
        i = start + k
        name = f"{i:04d}"
        write_png(out / f"{name}.png", data.to_uint8(images[k]))
        write_png(out / f"{name}-label.png", labels[k])
        files.append({"index": i, "image": f"{name}.png", "label": f"{name}-label.png"})
    spec = data.TASKS[task]
    index = {
        "task": task,
        "split": split,
        "seed": seed,
        "generator": data.GENERATOR_VERSION,
        "classes": spec["classes"],
        "width": spec["width"],
        "height": spec["height"],
        "count": count,
        "scenes": files,
    }
    (out / "scenes.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=sorted(data.TASKS))
    ap.add_argument("--split", default="test", choices=sorted(data.SPLITS))
    ap.add_argument("--count", type=int, default=data.TEST_SCENES)
    ap.add_argument("--start", type=int, default=0, help="index of the first scene")
    ap.add_argument("--seed", type=int, help=f"default per split: {DEFAULT_SEEDS}")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.count < 1 or args.start < 0:
        ap.error("--count must be ≥ 1 and --start ≥ 0")
    index = write_scenes(args.task, args.split, args.count, Path(args.out), args.seed, args.start)
    print(f"wrote {index['count']} {args.task} {args.split} scenes (seed {index['seed']}) to {args.out}")


if __name__ == "__main__":
    main()
