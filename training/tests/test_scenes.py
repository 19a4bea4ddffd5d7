"""scenes.py writes exactly the held-out scenes, as the PNG bytes a client would send."""

import json
import struct
import sys
import tempfile
import unittest
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import data  # noqa: E402
import scenes  # noqa: E402


def read_grey_png(path: Path) -> np.ndarray:
    """Decodes the 8-bit grey, filter-0 PNGs png.write_png makes."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(raw):
        (n,) = struct.unpack(">I", raw[pos : pos + 4])
        kind, body = raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour = ihdr[:4]
    assert (depth, colour) == (8, 0), "8-bit grey"
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    assert not rows[:, 0].any(), "filter 0"
    return rows[:, 1:].copy()


class ScenesTest(unittest.TestCase):
    def test_writes_the_test_scenes_exactly(self):
        for task in ["digits", "micrograph"]:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                scenes.main(["--task", task, "--split", "test", "--count", "2", "--start", "3", "--out", tmp])
                index = json.loads((out / "scenes.json").read_text())
                self.assertEqual(index["seed"], data.TEST_SEED)
                self.assertEqual([s["image"] for s in index["scenes"]], ["0003.png", "0004.png"])
                for i in (3, 4):
                    img, lab = data.scene(task, "test", data.TEST_SEED, i)
                    px = read_grey_png(out / f"{i:04d}.png")
                    self.assertEqual(px.shape, (data.TASKS[task]["height"], data.TASKS[task]["width"]))
                    # The server reads v / 255: bit for bit the float image Python evaluates.
                    np.testing.assert_array_equal(px.astype(np.float32) / 255, img)
                    np.testing.assert_array_equal(read_grey_png(out / f"{i:04d}-label.png"), lab)

    def test_generate_matches_scene_by_scene(self):
        images, labels = data.generate("digits", "test", data.TEST_SEED, 16, workers=2)  # a process pool
        for i in (0, 7, 15):
            img, lab = data.scene("digits", "test", data.TEST_SEED, i)
            np.testing.assert_array_equal(images[i], img)
            np.testing.assert_array_equal(labels[i], lab)


if __name__ == "__main__":
    unittest.main()
