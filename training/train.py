#!/usr/bin/env python3
"""Train the segmentation models of a task's zoo on random crops.

    python3 training/train.py --task digits                 # f0, f1, f2 in turn
    python3 training/train.py --task digits --model f2 --steps 3000 --minutes 40

One line per epoch (loss, val mIoU, elapsed); a checkpoint after every epoch
in training/runs/<task>-<model>/last.pt, from which a rerun resumes (same
batches, same result, as every batch is a function of the step number).
`final.pt` is written when the planned steps are done. Train the policy
afterwards with policy.py.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
import models  # noqa: E402
from evaluate import miou, predict_full  # noqa: E402

RUNS = Path(__file__).resolve().parent / "runs"

# Defaults per model: steps, crop (f1/f2 train at their served window = tile + 2·halo), lr.
DEFAULTS = {
    "f0": {"steps": 1500, "crop": 128, "lr": 1e-2},
    "f1": {"steps": 2000, "crop": 96, "lr": 5e-3},
    "f2": {"steps": 3000, "crop": 96, "lr": 3e-3},
}
MICROGRAPH_POOL = 1500


def train_pool(task: str, n: int, seed: int):
    """Training scenes kept in memory (and cached on disk) when a scene is slow to generate."""
    path = data.CACHE / f"train-{task}-{seed}-{n}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["images"], z["labels"]
    pairs = [data.scene(task, "train", seed, i) for i in range(n)]
    images = np.stack([p[0] for p in pairs]).astype(np.float16)
    labels = np.stack([p[1] for p in pairs])
    data.CACHE.mkdir(parents=True, exist_ok=True)
    tmp = data.CACHE / f"pool.{id(pairs)}.npz"
    np.savez(tmp, images=images, labels=labels)
    tmp.replace(path)
    return images, labels


class CropSampler:
    """Batch `step` of random crops: a pure function of (task, seed, step)."""

    def __init__(self, task: str, batch: int, crop: int, seed: int, pool: int | None):
        self.task, self.batch, self.crop, self.seed = task, batch, crop, seed
        self.pool = train_pool(task, pool, seed) if pool else None

    def __call__(self, step: int):
        rng = np.random.default_rng([self.seed, 7, step])
        xs, ys = [], []
        for b in range(self.batch):
            if self.pool is None:
                img, lab = data.scene(self.task, "train", self.seed, step * self.batch + b)
            else:
                k = int(rng.integers(len(self.pool[0])))
                img, lab = self.pool[0][k].astype(np.float32), self.pool[1][k]
            H, W = lab.shape
            y0 = int(rng.integers(0, H - self.crop + 1))
            x0 = int(rng.integers(0, W - self.crop + 1))
            img, lab = img[y0 : y0 + self.crop, x0 : x0 + self.crop], lab[y0 : y0 + self.crop, x0 : x0 + self.crop]
            if self.pool is not None:  # micrographs are isotropic: use the 8 symmetries
                r = int(rng.integers(8))
                img, lab = np.rot90(img, r % 4), np.rot90(lab, r % 4)
                if r >= 4:
                    img, lab = img[:, ::-1], lab[:, ::-1]
            xs.append(np.ascontiguousarray(img))
            ys.append(np.ascontiguousarray(lab))
        return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys)).long()


def val_set(task: str, n: int):
    pairs = [data.scene(task, "val", 1, i) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def lr_at(step: int, steps: int, base: float) -> float:
    warm = min(100, steps // 10)
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return base * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * t)))


def train(
    task: str,
    name: str,
    steps: int | None = None,
    batch: int = 8,
    crop: int | None = None,
    epoch_steps: int = 100,
    val_scenes: int = 24,
    minutes: float | None = None,
    run_dir: Path | None = None,
    seed: int = 0,
    pool: int | None = None,
    log=print,
) -> Path:
    """Trains (or resumes) one model; returns the run directory."""
    d = DEFAULTS[name]
    steps = steps or d["steps"]
    crop = crop or d["crop"]
    run_dir = run_dir or RUNS / f"{task}-{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    n_classes = len(data.TASKS[task]["classes"])
    torch.manual_seed(seed)
    model = models.build(task, name, n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=d["lr"], weight_decay=1e-4)
    step, elapsed = 0, 0.0
    ckpt = run_dir / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
        log(f"[{task}-{name}] resuming at step {step} ({elapsed:.0f}s so far)")
    if step >= steps:
        log(f"[{task}-{name}] already trained ({step} steps)")
        return run_dir
    if pool is None and task == "micrograph":
        pool = MICROGRAPH_POOL
    sampler = CropSampler(task, batch, crop, seed, pool)
    vx, vy = val_set(task, val_scenes)
    log(
        f"[{task}-{name}] {models.n_params(model)} params, {steps} steps of {batch}×{crop}², "
        f"epoch = {epoch_steps} steps, threads {torch.get_num_threads()}"
    )
    t0 = time.time() - elapsed
    losses = []
    while step < steps:
        model.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, d["lr"])
        x, y = sampler(step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % epoch_steps == 0 or step == steps:
            val = miou(predict_full(model, vx).argmax(1), vy, n_classes)
            elapsed = time.time() - t0
            log(
                f"[{task}-{name}] epoch {math.ceil(step / epoch_steps)}/{math.ceil(steps / epoch_steps)} "
                f"step {step} loss {np.mean(losses):.4f} val_mIoU {val:.4f} elapsed {elapsed:.0f}s",
            )
            losses = []
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed}
            torch.save(state, run_dir / "last.tmp")
            (run_dir / "last.tmp").replace(ckpt)
            if minutes is not None and elapsed > minutes * 60 and step < steps:
                log(f"[{task}-{name}] time limit reached at step {step}; rerun to resume")
                return run_dir
    torch.save({"model": model.state_dict(), "step": step, "elapsed": elapsed}, run_dir / "final.pt")
    log(f"[{task}-{name}] done: {step} steps in {elapsed:.0f}s")
    return run_dir


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=sorted(data.TASKS))
    ap.add_argument("--model", choices=["f0", "f1", "f2", "all"], default="all")
    ap.add_argument("--steps", type=int, help="planned steps (default per model)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int)
    ap.add_argument("--epoch-steps", type=int, default=100)
    ap.add_argument("--minutes", type=float, help="stop (resumably) after this much training time")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in ["f0", "f1", "f2"] if args.model == "all" else [args.model]:
        train(args.task, name, args.steps, args.batch, args.crop, args.epoch_steps, minutes=args.minutes,
              log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
