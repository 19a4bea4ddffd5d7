"""The served ONNX files run in PyTorch (onnx_torch.py) give PyTorch's own outputs, and the refit's device-side
helpers agree with the numpy reference ones."""

import base64
import json
import sys
import unittest
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
import evaluate  # noqa: E402
import models  # noqa: E402
import onnx_torch  # noqa: E402
import refit_critic  # noqa: E402


def _arr(b: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b["data"]), "<f4").reshape(b["shape"])


class OnnxTorchTest(unittest.TestCase):
    def test_every_committed_model_matches_its_fixture(self):
        manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
        checked = 0
        for e in manifest["models"]:
            fx = ROOT / "tests" / "training" / "fixtures" / f"{e['id']}.json"
            if not fx.exists():
                continue
            f = json.loads(fx.read_text())
            g = onnx_torch.load(ROOT / "models" / e["file"])
            with torch.no_grad():
                ys = g(torch.from_numpy(_arr(f["input"]).copy()))
            ys = ys if isinstance(ys, tuple) else (ys,)
            for y, name in zip(ys, f["outputs"]):
                np.testing.assert_allclose(y.numpy(), _arr(f["outputs"][name]), atol=2e-4, rtol=1e-3, err_msg=e["id"])
            checked += 1
        self.assertGreaterEqual(checked, 8)

    def test_policy_weights_load_into_the_module(self):
        pol = models.RoutingPolicy(64)
        pol.load_state_dict(onnx_torch.policy_state(ROOT / "models" / "digits-policy.onnx"))
        g = onnx_torch.load(ROOT / "models" / "digits-policy.onnx")
        x = torch.rand(1, 2, 128, 192)
        with torch.no_grad():
            for a, b in zip(pol(x), g(x)):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

    def test_device_counts_match_the_reference(self):
        rng = np.random.default_rng(0)
        pred = rng.integers(0, 3, (4, 100, 130)).astype(np.uint8)
        label = rng.integers(0, 3, (4, 100, 130)).astype(np.uint8)
        ref = evaluate.tile_stats(pred, label, 3, 64)
        got = refit_critic.tile_counts(torch.from_numpy(pred), torch.from_numpy(label), 3, 64).numpy()
        np.testing.assert_array_equal(got, ref)
        # routed mIoU from per-tile counts = mIoU of the assembled mask
        counts = np.stack([ref, evaluate.tile_stats(label, label, 3, 64)], 1)
        acts = rng.integers(0, 2, (4, 2, 3))
        up = np.repeat(np.repeat(acts, 64, 1), 64, 2)[:, :100, :130]
        mask = np.where(up == 1, label, pred)
        self.assertAlmostEqual(refit_critic.routed_miou(counts, acts), evaluate.miou(mask, label, 3), places=10)

    def test_spearman_with_ties(self):
        a = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 3.0])
        self.assertAlmostEqual(refit_critic.spearman(a, a), 1.0)
        self.assertAlmostEqual(refit_critic.spearman(a, -a), -1.0)
        np.testing.assert_array_equal(refit_critic.ranks(a), [0.5, 0.5, 2, 3.5, 3.5, 5])


if __name__ == "__main__":
    unittest.main()
