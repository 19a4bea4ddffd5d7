"""Tests of the zoo and of the serving-shaped inference helpers."""

import sys
import unittest
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import evaluate  # noqa: E402
import models  # noqa: E402


class ZooTest(unittest.TestCase):
    def test_shapes_and_costs_ordering(self):
        torch.manual_seed(0)
        for task, c in [("digits", 2), ("micrograph", 3)]:
            sizes = [models.n_params(models.build(task, n, c)) for n in ["f0", "f1", "f2"]]
            self.assertEqual(sizes, sorted(sizes))
            for n in ["f0", "f1", "f2"]:
                m = models.build(task, n, c).eval()
                self.assertEqual(tuple(m(torch.zeros(2, 1, 32, 48)).shape), (2, c, 32, 48))
        pol = models.build("digits", "policy", 2).eval()
        a, g = pol(torch.zeros(1, 2, 128, 192))
        self.assertEqual(tuple(a.shape), (1, 3, 2, 3))
        self.assertEqual(tuple(g.shape), (1, 3, 2, 3))


class TiledInferenceTest(unittest.TestCase):
    def test_tiles_with_halo_reassemble_a_pointwise_model_exactly(self):
        class Pointwise(torch.nn.Module):
            multiple = 1

            def forward(self, x):
                return torch.cat([x, 1 - x], 1)

        imgs = np.random.default_rng(0).random((2, 100, 130)).astype(np.float32)
        y = evaluate.predict_tiled(Pointwise(), imgs, tile=32, halo=8)
        np.testing.assert_array_equal(y[:, 0], imgs)

    def test_miou_and_tile_iou(self):
        lab = np.zeros((1, 4, 4), np.uint8)
        lab[0, :2] = 1
        self.assertEqual(evaluate.miou(lab, lab, 2), 1.0)
        pred = np.zeros_like(lab)
        self.assertAlmostEqual(evaluate.miou(pred, lab, 2), 0.25)  # bg IoU 0.5, digit 0
        t = evaluate.tile_iou(pred, lab, 2, 2)
        self.assertEqual(t.shape, (1, 2, 2))
        self.assertEqual(t[0, 1, 0], 1.0)  # all-background tile predicted right
        self.assertEqual(t[0, 0, 0], 0.0)

    def test_entropy_features(self):
        logits = np.zeros((1, 3, 2, 2), np.float32)
        logits[0, 2, 0, 0] = 50
        f = evaluate.entropy_features(logits)
        self.assertAlmostEqual(float(f[0, 1, 0, 1]), 1.0, places=5)  # uniform → max entropy
        self.assertAlmostEqual(float(f[0, 1, 0, 0]), 0.0, places=5)
        self.assertEqual(float(f[0, 0, 0, 0]), 1.0)  # argmax 2 of 3 classes → 1


class PlannerRuleTest(unittest.TestCase):
    def test_budget_ranking_by_gain_per_flop_with_upgrades(self):
        import policy

        flops = [0.0, 1.0, 4.0]
        gain = np.zeros((3, 1, 4), np.float32)
        gain[:, 0, 0] = [0, 0.5, 0.6]  # f1 on the hull; upgrade ratio 0.1/3
        gain[:, 0, 1] = [0, 0.1, 2.0]  # f2 dominates: one step at 0.5
        gain[:, 0, 2] = [0, -0.1, -0.2]  # never worth it
        gain[:, 0, 3] = [0, 0.3, 0.2]  # f1 only (f2 no better)
        acts, spent = policy.plan_under_budget(gain, flops, 0)
        self.assertEqual(acts.tolist(), [[0, 0, 0, 0]])
        self.assertEqual(spent, 0)
        acts, spent = policy.plan_under_budget(gain, flops, 2.0)  # f1 on tiles 0 and 3
        self.assertEqual(acts.tolist(), [[1, 0, 0, 1]])
        self.assertEqual(spent, 2.0)
        acts, spent = policy.plan_under_budget(gain, flops, 6.0)  # + f2 on tile 1
        self.assertEqual(acts.tolist(), [[1, 2, 0, 1]])
        acts, spent = policy.plan_under_budget(gain, flops, 100.0)  # + the upgrade of tile 0
        self.assertEqual(acts.tolist(), [[2, 2, 0, 1]])
        self.assertEqual(spent, 9.0)


if __name__ == "__main__":
    unittest.main()
