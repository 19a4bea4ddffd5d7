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
import os
import queue
import shutil
import sys
import threading
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
IGNORE = 255  # label of crop pixels beyond the image border: no loss there

# Defaults per model: steps, crop (f1/f2 train at their served window = tile + 2·halo), lr.
DEFAULTS = {
    "f0": {"steps": 1500, "crop": 128, "lr": 1e-2},
    "f1": {"steps": 2000, "crop": 96, "lr": 5e-3},
    "f2": {"steps": 3000, "crop": 96, "lr": 3e-3},
}
# Training scenes per task (generated once, cached in training/.cache/).
POOL = {"digits": 4000, "micrograph": 1500}


def pick_device(name: str | None = None) -> torch.device:
    """`name` if given, else CUDA when there is one, else the CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_pool(task: str, n: int, seed: int, workers: int | None = None):
    """n training scenes as uint8 arrays (exact: scenes are 8-bit), cached on disk.

    Returned memory-mapped, so parallel training processes share one copy.
    """
    d = data.CACHE / f"pool-{task}-{seed}-{n}-{data.GENERATOR_VERSION}"
    if not (d / "labels.npy").exists():
        t = time.time()
        images, labels = data.generate(task, "train", seed, n, workers=workers)
        tmp = data.CACHE / f"pool.{os.getpid()}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        np.save(tmp / "images.npy", data.to_uint8(images))
        np.save(tmp / "labels.npy", labels)
        try:
            tmp.rename(d)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"[{task}] generated {n} training scenes in {time.time() - t:.0f}s", flush=True)
    return np.load(d / "images.npy", mmap_mode="r"), np.load(d / "labels.npy", mmap_mode="r")


class CropSampler:
    """Batch `step` of random crops: a pure function of (task, seed, step).

    A crop may reach `margin` pixels beyond the image border, zero-filled with
    its labels ignored: the server pads tile windows at the border with zeros,
    so local models must have seen such windows. Micrographs are isotropic and
    also get the 8 flips/rotations. Images come back as float32 [B, 1, c, c]
    in [0, 1] (v / 255, as the server reads a PNG), labels as int64 [B, c, c].
    """

    def __init__(self, task: str, batch: int, crop: int, seed: int, pool: int, margin: int = 0,
                 workers: int | None = None):
        self.task, self.batch, self.crop, self.seed, self.margin = task, batch, crop, seed, margin
        self.images, self.labels = train_pool(task, pool, seed, workers)
        self.symmetries = 8 if task == "micrograph" else 1

    def __call__(self, step: int):
        rng = np.random.default_rng([self.seed, 7, step])
        n, H, W = self.labels.shape
        c, m = self.crop, self.margin
        xs = np.zeros((self.batch, c, c), np.uint8)
        ys = np.full((self.batch, c, c), IGNORE, np.uint8)
        for b in range(self.batch):
            k = int(rng.integers(n))
            y0 = int(rng.integers(-m, H - c + m + 1))
            x0 = int(rng.integers(-m, W - c + m + 1))
            sy, ey, sx, ex = max(y0, 0), min(y0 + c, H), max(x0, 0), min(x0 + c, W)
            xs[b, sy - y0 : ey - y0, sx - x0 : ex - x0] = self.images[k, sy:ey, sx:ex]
            ys[b, sy - y0 : ey - y0, sx - x0 : ex - x0] = self.labels[k, sy:ey, sx:ex]
            r = int(rng.integers(self.symmetries))
            if r:
                xs[b], ys[b] = np.rot90(xs[b], r % 4), np.rot90(ys[b], r % 4)
                if r >= 4:
                    xs[b], ys[b] = xs[b, :, ::-1].copy(), ys[b, :, ::-1].copy()
        x = torch.from_numpy(xs)[:, None].float().div_(255)
        return x, torch.from_numpy(ys).long()


class Prefetch:
    """Makes the batches of steps start, start+1, … in a background thread."""

    def __init__(self, sampler, start: int, depth: int = 6):
        self.q: queue.Queue = queue.Queue(depth)
        self.stop = False

        def work():
            step = start
            while not self.stop:
                self.q.put(sampler(step))
                step += 1

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()

    def next(self):
        return self.q.get()

    def close(self):
        self.stop = True
        while self.thread.is_alive():
            try:
                self.q.get_nowait()
            except queue.Empty:
                self.thread.join(0.05)


def val_set(task: str, n: int):
    return data.generate(task, "val", 1, n)


def lr_at(step: int, steps: int, base: float, frac: float | None = None) -> float:
    """Linear warm-up (100 steps), then cosine decay to 3% of `base`.

    The decay follows the step count, or `frac` (the spent fraction of a time
    budget) when training runs against the clock (`--budget-minutes`).
    """
    warm = min(100, steps // 10)
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm) if frac is None else min(1.0, frac)
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
    lr: float | None = None,
    device: str | None = None,
    workers: int | None = None,
    budget_minutes: float | None = None,
    widths: list[int] | None = None,
    log=print,
) -> Path:
    """Trains (or resumes) one model; returns the run directory.

    With `budget_minutes` the run is against the clock: the learning rate
    decays with the spent fraction of the budget, and training ends (final.pt)
    when it is spent or at `steps`, whichever comes first. Runs on CUDA when there is a GPU (bf16 autocast), else on the CPU; the
    checkpoints are CPU tensors either way, so export needs no GPU.
    """
    d = DEFAULTS[name]
    steps = steps or (10**9 if budget_minutes else d["steps"])
    crop = crop or d["crop"]
    lr = lr or d["lr"]
    dev = pick_device(device)
    run_dir = run_dir or RUNS / f"{task}-{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    n_classes = len(data.TASKS[task]["classes"])
    torch.manual_seed(seed)
    step, elapsed, opt_state = 0, 0.0, None
    ckpt = run_dir / "last.pt"
    state = torch.load(ckpt, map_location="cpu") if ckpt.exists() else None
    if state is not None and state.get("widths"):
        widths = state["widths"]  # a run keeps the architecture it started with
    model = models.build(task, name, n_classes, widths)
    if state is not None:
        model.load_state_dict(state["model"])
        opt_state = state["opt"]
        step, elapsed = state["step"], state["elapsed"]
        log(f"[{task}-{name}] resuming at step {step} ({elapsed:.0f}s so far)")
    budget = budget_minutes * 60 if budget_minutes else None
    if step >= steps or (budget is not None and elapsed >= budget):
        log(f"[{task}-{name}] already trained ({step} steps)")
        return run_dir
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format  # NHWC feeds the tensor cores
    if cuda:
        torch.backends.cudnn.benchmark = True
    model.to(dev, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    # Local models (run on haloed tiles) see windows that reach past the image border.
    margin = 0 if name == "f0" else crop // 2
    sampler = CropSampler(task, batch, crop, seed, pool or POOL[task], margin, workers)
    vx, vy = val_set(task, val_scenes)
    plan = f"{budget_minutes:g} min" if budget else f"{steps} steps"
    log(
        f"[{task}-{name}] {models.n_params(model)} params, {plan} of {batch}×{crop}² on {dev}"
        f"{' (bf16 autocast)' if cuda else ''}, epoch = {epoch_steps} steps, threads {torch.get_num_threads()}"
    )
    t0 = time.time() - elapsed
    info = {"step": step, "elapsed": elapsed, "batch": batch, "crop": crop, "device": device_name(dev),
                "widths": model.widths}
    loss_sum, loss_n = torch.zeros((), device=dev), 0
    batches = Prefetch(sampler, step)
    try:
        done = False
        while not done:
            model.train()
            spent = time.time() - t0
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr, spent / budget if budget else None)
            x, y = batches.next()
            x, y = x.to(dev, non_blocking=True).contiguous(memory_format=fmt), y.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                out = model(x)
            loss = F.cross_entropy(out.float(), y, ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            loss_n += 1
            step += 1
            done = step >= steps or (budget is not None and time.time() - t0 >= budget)
            if step % epoch_steps == 0 or done:
                val = miou(predict_full(model, vx).argmax(1), vy, n_classes)
                elapsed = time.time() - t0
                total = "" if budget else f"/{math.ceil(steps / epoch_steps)}"
                log(
                    f"[{task}-{name}] epoch {math.ceil(step / epoch_steps)}{total} "
                    f"step {step} loss {loss_sum.item() / loss_n:.4f} val_mIoU {val:.4f} elapsed {elapsed:.0f}s",
                )
                loss_sum, loss_n = torch.zeros((), device=dev), 0
                info = {"step": step, "elapsed": elapsed, "batch": batch, "crop": crop, "device": device_name(dev),
                "widths": model.widths}
                state = {"model": cpu_state(model), "opt": opt.state_dict(), **info}
                torch.save(state, run_dir / "last.tmp")
                (run_dir / "last.tmp").replace(ckpt)
                if minutes is not None and elapsed > minutes * 60 and not done:
                    log(f"[{task}-{name}] time limit reached at step {step}; rerun to resume")
                    return run_dir
    finally:
        batches.close()
    torch.save({"model": cpu_state(model), **info}, run_dir / "final.pt")
    log(f"[{task}-{name}] done: {step} steps in {elapsed:.0f}s")
    return run_dir


def cpu_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=sorted(data.TASKS))
    ap.add_argument("--model", choices=["f0", "f1", "f2", "all"], default="all")
    ap.add_argument("--steps", type=int, help="planned steps (default per model)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int)
    ap.add_argument("--lr", type=float, help="peak learning rate (default per model)")
    ap.add_argument("--pool", type=int, help=f"training scenes (default {POOL})")
    ap.add_argument("--epoch-steps", type=int, default=100)
    ap.add_argument("--val-scenes", type=int, default=24)
    ap.add_argument("--minutes", type=float, help="stop (resumably) after this much training time")
    ap.add_argument("--budget-minutes", type=float,
                    help="train against the clock: cosine decay over this much time, then final.pt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda if available)")
    ap.add_argument("--workers", type=int, help="processes generating the training scenes (default: all cores)")
    ap.add_argument("--runs", default=str(RUNS), help="where the run directories go")
    ap.add_argument("--widths", type=int, nargs="+", help="UNet widths per level (default: models.ZOO)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in ["f0", "f1", "f2"] if args.model == "all" else [args.model]:
        train(args.task, name, args.steps, args.batch, args.crop, args.epoch_steps, args.val_scenes,
              minutes=args.minutes, run_dir=Path(args.runs) / f"{args.task}-{name}", pool=args.pool, lr=args.lr,
              device=args.device, workers=args.workers, budget_minutes=args.budget_minutes, widths=args.widths, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
