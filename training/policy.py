"""PaSeR's routing policy: data, REINFORCE training and routed evaluation.

Per tile of f0's view of a scene the policy picks one action: keep f0's
result, run f1, or run f2 on the tile (with its halo). Reward per tile:

    r(a) = (1 − λ) · (IoU_tile(a) − IoU_tile(f0)) − λ · cost(a)

where cost(a) is the action's FLOPs for one haloed tile, counted on the
exported ONNX graph by lib/onnx (training/flops.ts), divided by f2's.
The actor head is trained with REINFORCE (baseline: the expected reward under
the current policy, from the value head), the value head (`gain`) is
regressed on the observed IoU gain of every action, so the serving planner
can rank (tile, action) pairs by predicted gain per FLOP under any budget.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import models
from evaluate import (
    confusion, entropy_features, miou_from_confusion, predict_full, predict_tiled, tile_gain, tile_iou, tile_stats,
)


def _pad64(x: np.ndarray, tile: int) -> np.ndarray:
    h, w = x.shape[-2:]
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, (-h) % tile), (0, (-w) % tile)])


def routing_data(task: str, zoo: dict, split: str, seed: int, n: int, tile: int, halo: int, log=print):
    """Everything routing needs for n scenes: features, labels, and each action's prediction."""
    t = time.time()
    pairs = [data.scene(task, split, seed, i) for i in range(n)]
    images = np.stack([p[0] for p in pairs])
    labels = np.stack([p[1] for p in pairs])
    c = len(data.TASKS[task]["classes"])
    logits0 = predict_full(zoo["f0"], images)
    preds = [
        logits0.argmax(1).astype(np.uint8),
        predict_tiled(zoo["f1"], images, tile, halo).argmax(1).astype(np.uint8),
        predict_tiled(zoo["f2"], images, tile, halo).argmax(1).astype(np.uint8),
    ]
    ious = np.stack([tile_iou(p, labels, c, tile) for p in preds], 1)  # [n, 3, gh, gw]
    stats = [tile_stats(p, labels, c, tile) for p in preds]
    gains = np.stack([tile_gain(s, stats[0]) for s in stats], 1)  # [n, 3, gh, gw], gains[:, 0] == 0
    feats = _pad64(entropy_features(logits0), tile)
    log(f"[{task}-policy] routing data for {n} {split} scenes in {time.time() - t:.0f}s")
    return {"images": images, "features": feats, "labels": labels, "preds": np.stack(preds, 1), "ious": ious, "gains": gains, "n_classes": c}


def train_policy(task: str, d: dict, cost: np.ndarray, lam: float, epochs: int = 150, seed: int = 0, log=print):
    """REINFORCE on precomputed tile outcomes; returns the trained RoutingPolicy."""
    torch.manual_seed(seed)
    tile = models.ZOO[task]["tile"]
    pol = models.RoutingPolicy(tile)
    opt = torch.optim.Adam(pol.parameters(), lr=2e-3)
    x_all = torch.from_numpy(d["features"])
    gain_all = torch.from_numpy(d["gains"])  # [n, 3, gh, gw]
    cost_t = torch.tensor(cost, dtype=torch.float32)[None, :, None, None]
    gen = torch.Generator().manual_seed(seed)
    n = len(x_all)
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        tot_r = 0.0
        for i in range(0, n, 32):
            idx = perm[i : i + 32]
            x, gain = x_all[idx], gain_all[idx]
            logits, g_hat = pol(x)
            logp = F.log_softmax(logits, 1)
            p = logp.exp()
            a = torch.multinomial(p.permute(0, 2, 3, 1).reshape(-1, 3), 1, generator=gen).reshape(
                len(idx), 1, *logits.shape[2:]
            )
            reward_all = (1 - lam) * gain - lam * cost_t  # reward of every action (known offline)
            r = reward_all.gather(1, a)
            baseline = (p * ((1 - lam) * g_hat - lam * cost_t)).sum(1, keepdim=True).detach()
            adv = r - baseline
            adv = adv / (adv.std() + 1e-3)  # scale-free steps whatever λ and the gains' units
            pg = -(adv * logp.gather(1, a)).mean()
            ent = -(p * logp).sum(1).mean()
            loss = pg - 0.01 * ent + F.mse_loss(g_hat, gain) * 10
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot_r += r.sum().item()
        if (ep + 1) % 50 == 0 or ep == epochs - 1:
            log(f"[{task}-policy] λ={lam} epoch {ep + 1}/{epochs} mean reward {tot_r / gain_all[:, 0].numel():.4f}")
    return pol


@torch.no_grad()
def route(pol, d: dict) -> np.ndarray:
    """Greedy actions per tile [n, gh, gw]."""
    pol.eval()
    logits, _ = pol(torch.from_numpy(d["features"]))
    return logits.argmax(1).numpy()


def routed_result(d: dict, actions: np.ndarray, tile: int) -> tuple[float, np.ndarray]:
    """Dataset mIoU of the mask assembled from each tile's chosen action, and the action counts."""
    n, H, W = d["labels"].shape
    up = np.repeat(np.repeat(actions, tile, 1), tile, 2)[:, :H, :W]
    pred = np.take_along_axis(d["preds"], up[:, None].astype(np.int64), 1)[:, 0]
    cm = confusion(pred, d["labels"], d["n_classes"])
    return miou_from_confusion(cm), np.bincount(actions.ravel(), minlength=3)


def mask_miou(d: dict, action: int) -> float:
    return miou_from_confusion(confusion(d["preds"][:, action], d["labels"], d["n_classes"]))


def select_lambda(task, train_d, val_d, cost, frac_of, lams, max_frac=0.40, log=print):
    """Trains one policy per λ; keeps the most accurate on val whose FLOPs stay ≤ max_frac of f2-everywhere.

    frac_of(counts, n_scenes) → the routed FLOPs as a fraction of f2-everywhere's.
    """
    tile = models.ZOO[task]["tile"]
    results = []
    for lam in lams:
        pol = train_policy(task, train_d, cost, lam, log=log)
        m, counts = routed_result(val_d, route(pol, val_d), tile)
        frac = frac_of(counts, len(val_d["labels"]))
        log(f"[{task}-policy] λ={lam}: val routed mIoU {m:.4f} at {frac:.1%} of f2's FLOPs, actions {counts.tolist()}")
        results.append((lam, m, frac, pol))
    ok = [r for r in results if r[2] <= max_frac]
    best = max(ok, key=lambda r: r[1]) if ok else min(results, key=lambda r: r[2])
    return best, [(r[0], r[1], r[2]) for r in results]


def flops_fraction(f0: float, pol: float, per_tile: list[float], tiles_per_scene: int):
    """f(counts, n) → routed FLOPs / f2-on-every-tile FLOPs."""

    def frac(counts, n):
        routed = n * (f0 + pol) + counts[1] * per_tile[1] + counts[2] * per_tile[2]
        return routed / (n * tiles_per_scene * per_tile[2])

    return frac


def tiles_per_scene(task: str) -> int:
    t = models.ZOO[task]["tile"]
    return math.ceil(data.TASKS[task]["height"] / t) * math.ceil(data.TASKS[task]["width"] / t)
