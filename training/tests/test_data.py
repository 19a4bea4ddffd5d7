"""Tests of the scene generators: determinism, the DESIGN.md §2 rules, splits."""

import sys
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import data  # noqa: E402
from png import write_png  # noqa: E402


class MnistTest(unittest.TestCase):
    def test_split_by_index_in_class_file(self):
        train, test = data.load_mnist("train"), data.load_mnist("test")
        self.assertEqual(train.shape[1:], (28, 28))
        # Every 5th digit of each class file (index 0, 5, 10, …) is test-only.
        total = len(train) + len(test)
        self.assertGreaterEqual(total, 10_000)
        self.assertAlmostEqual(len(test) / total, 0.2, delta=0.002)
        self.assertTrue(0 <= train.min() and train.max() <= 1)
        self.assertIs(data.load_mnist("val"), train)


class DigitsSceneTest(unittest.TestCase):
    def test_deterministic_given_seed(self):
        a = data.digits_scene("train", 3, 17)
        b = data.digits_scene("train", 3, 17)
        c = data.digits_scene("train", 3, 18)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        self.assertFalse(np.array_equal(a[0], c[0]))

    def test_shape_range_and_labels(self):
        for i in range(20):
            img, lab = data.digits_scene("test", 0, i)
            self.assertEqual(img.shape, (256, 256))
            self.assertEqual(img.dtype, np.float32)
            self.assertTrue(0 <= img.min() and img.max() <= 1)
            self.assertEqual(set(np.unique(lab)) - {0, 1}, set())
            self.assertGreater(lab.sum(), 0)  # 3–8 digits are always pasted

    def test_digit_pixels_follow_the_clean_intensity(self):
        # With the noise removed, label 1 is exactly "clean intensity ≥ 0.5".
        rng_state = data.scene_rng

        class NoNoise:
            def __init__(self, g):
                self.g = g

            def __getattr__(self, k):
                return getattr(self.g, k)

            def uniform(self, lo=0.0, hi=1.0, size=None):
                if (lo, hi) == (0.05, 1.0):
                    self.g.uniform(lo, hi, size)
                    return 0.0
                return self.g.uniform(lo, hi, size)

        try:
            data.scene_rng = lambda *a: NoNoise(rng_state(*a))
            for i in range(10):
                img, lab = data.digits_scene("train", 1, i)
                self.assertTrue(np.all(img[lab == 1] >= 0.5))
                # clutter is drawn only on background; digit pixels are never brightened by it
        finally:
            data.scene_rng = rng_state

    def test_noise_varies_per_image(self):
        stds = []
        for i in range(30):
            img, lab = data.digits_scene("train", 2, i)
            stds.append(img[lab == 0].std())
        self.assertLess(min(stds), 0.15)
        self.assertGreater(max(stds), 0.3)


class MicrographSceneTest(unittest.TestCase):
    def test_deterministic_shape_and_classes(self):
        a = data.micrograph_scene("test", 0, 5)
        b = data.micrograph_scene("test", 0, 5)
        np.testing.assert_array_equal(a[0], b[0])
        img, lab = a
        self.assertEqual(img.shape, (224, 256))
        self.assertTrue(0 <= img.min() and img.max() <= 1)
        self.assertEqual(set(np.unique(lab)), {0, 1, 2})

    def test_phases_are_ordered_by_brightness(self):
        means = np.zeros(3)
        for i in range(8):
            img, lab = data.micrograph_scene("train", 0, i)
            means += [img[lab == c].mean() for c in range(3)]
        self.assertLess(means[0], means[1])  # pore darker than binder
        self.assertLess(means[1], means[2])  # binder darker than active material


class TestSetTest(unittest.TestCase):
    def test_scene_streams_are_independent_per_split(self):
        a = data.scene("digits", "train", 0, 0)[0]
        b = data.scene("digits", "val", 0, 0)[0]
        c = data.scene("digits", "test", 0, 0)[0]
        self.assertFalse(np.array_equal(a, b))
        self.assertFalse(np.array_equal(a, c))


class PngTest(unittest.TestCase):
    def test_writes_a_valid_png(self):
        import tempfile
        import zlib

        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "x.png"
            px = np.arange(12, dtype=np.uint8).reshape(3, 4)
            write_png(p, px)
            raw = p.read_bytes()
            self.assertEqual(raw[:8], b"\x89PNG\r\n\x1a\n")
            idat = raw[raw.index(b"IDAT") + 4 : raw.index(b"IEND") - 8]
            rows = zlib.decompress(idat)
            self.assertEqual(rows, b"".join(b"\x00" + px[y].tobytes() for y in range(3)))


if __name__ == "__main__":
    unittest.main()
