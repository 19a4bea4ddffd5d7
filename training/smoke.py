#!/usr/bin/env python3
"""CI smoke test of the whole pipeline on a fresh machine, in a temp dir:
a few training steps of f0/f1/f2 per task on a handful of scenes, resume,
policy training, ONNX export, pricing by lib/onnx, manifest merge and model
card. Proves the pipeline runs; the numbers it prints mean nothing.

    python3 training/smoke.py            # < 3 minutes on 2 cores
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export  # noqa: E402
import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    torch.set_num_threads(2)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="thriftseg-smoke-") as tmp:
        tmp = Path(tmp)
        runs = tmp / "runs"
        for task in ["digits", "micrograph"]:
            for name in ["f0", "f1", "f2"]:
                kw = dict(batch=2, epoch_steps=2, val_scenes=2, run_dir=runs / f"{task}-{name}", pool=6)
                train.train(task, name, steps=2, **kw)
                train.train(task, name, steps=3, **kw)  # resumes from the step-2 checkpoint
        shutil.copy(ROOT / "models" / "manifest.json", tmp / "manifest.json")
        export.main([
            "--task", "digits", "--task", "micrograph", "--runs", str(runs), "--out", str(tmp / "models"),
            "--manifest", str(tmp / "manifest.json"), "--docs", str(tmp / "MODELS.md"),
            "--fixtures", str(tmp / "fixtures"), "--test-scenes", "4", "--policy-scenes", "4",
            "--val-scenes", "2", "--lambdas", "0.05", "0.2", "--budgets", "0.3",
        ])
        manifest = json.loads((tmp / "manifest.json").read_text())
        ids = [m["id"] for m in manifest["models"]]
        want = [f"{t}-{n}" for t in ["digits", "micrograph"] for n in ["f0", "f1", "f2", "policy"]]
        assert all(i in ids for i in want), ids
        assert "text" in manifest["tasks"] and "text-ppocrv4-det" in ids, "merge dropped the text task"
        for m in manifest["models"]:
            if m.get("file"):
                assert export.sha256(tmp / "models" / m["file"]) == m["sha256"], m["id"]
                assert m["gflops_reference"] > 0, m["id"]
    print(f"smoke ok in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
