#!/usr/bin/env python3
"""Writes example scenes of every trained task to docs/examples/ so a person
can look at the data: `<task>-<i>.png` (the image) and `<task>-<i>-mask.png`
(the label map, one colour per class). Test split, the fixed test seed.

    python3 training/examples.py [--out docs/examples] [--count 4]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
from png import colour_mask, write_png  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "examples"))
    ap.add_argument("--count", type=int, default=4)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in data.TASKS:
        for i in range(args.count):
            img, lab = data.scene(task, "test", data.TEST_SEED, i)
            write_png(out / f"{task}-{i}.png", np.round(img * 255).astype(np.uint8))
            write_png(out / f"{task}-{i}-mask.png", colour_mask(task, lab))
            print(out / f"{task}-{i}.png")


if __name__ == "__main__":
    main()
