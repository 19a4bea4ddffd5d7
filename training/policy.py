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

import copy
import hashlib
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import data
import models
from evaluate import (
    confusion, entropy_features, miou_from_confusion, predict_full, predict_tiled, tile_gain, tile_iou, tile_stats,
)


def _pad64(x: np.ndarray, tile: int) -> np.ndarray:
    h, w = x.shape[-2:]
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, (-h) % tile), (0, (-w) % tile)])


def _zoo_digest(zoo: dict) -> str:
    h = hashlib.sha256()
    for name in ["f0", "f1", "f2"]:
        for k, v in zoo[name].state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def routing_data(task: str, zoo: dict, split: str, seed: int, n: int, tile: int, halo: int, log=print,
                 cache: bool = True):
    """Everything routing needs for n scenes: features, labels, and each action's prediction.

    Cached in training/.cache/ under a digest of the three models' weights, so
    re-running the policy stage after a change to it needs no inference.
    """
    t = time.time()
    path = data.CACHE / f"routing-{task}-{split}-{seed}-{n}-{tile}-{halo}-{data.GENERATOR_VERSION}-{_zoo_digest(zoo)}.npz"
    if cache and path.exists():
        with np.load(path) as z:
            d = {k: z[k] for k in z.files}
        d["n_classes"] = int(d["n_classes"])
        log(f"[{task}-policy] routing data for {n} {split} scenes from {path.name}")
        return d
    if split == "test" and seed == data.TEST_SEED:
        images, labels = data.test_set(task, n)
    else:
        images, labels = data.generate(task, split, seed, n)
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
    d = {"features": feats, "labels": labels, "preds": np.stack(preds, 1), "ious": ious, "gains": gains, "n_classes": c}
    if cache:
        data.CACHE.mkdir(parents=True, exist_ok=True)
        tmp = data.CACHE / f"routing.{os.getpid()}.npz"
        np.savez(tmp, **d)
        os.replace(tmp, path)
    return d


def symmetries(task: str) -> list[int]:
    """The flips/rotations under which a task's tile grid maps onto itself (see `_sym`).

    All 8 for square images that fill whole tiles; else only the horizontal
    flip (the zero padding of the features stays at the bottom).
    """
    spec, tile = data.TASKS[task], models.ZOO[task]["tile"]
    H, W = spec["height"], spec["width"]
    if H == W and H % tile == 0:
        return list(range(8))
    return [0, 4] if W % tile == 0 else [0]


def _sym(x: torch.Tensor, k: int) -> torch.Tensor:
    if k >= 4:
        x = x.flip(3)
    return torch.rot90(x, k % 4, dims=(2, 3))


def _pooled(d: dict) -> torch.Tensor:
    """The policy's first op (4×4 average) applied once, so training runs at low resolution."""
    if "_pooled" not in d:
        d["_pooled"] = F.avg_pool2d(torch.from_numpy(d["features"]), 4)
    return d["_pooled"]


def _batches(n: int, size: int, gen: torch.Generator, syms: list[int]):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, size):
        yield perm[i : i + size], syms[int(torch.randint(len(syms), (1,), generator=gen))]


def train_critic(task: str, train_d: dict, val_d: dict, epochs: int = 60, seed: int = 0, log=print):
    """The value head: supervised regression (MSE) on every action's observed tile gain.

    Augmented with the task's symmetries; the epoch with the lowest
    validation MSE is kept (the gains of single tiles are noisy, and a model
    that fits them on 6,400 tiles stops generalising quickly).
    """
    torch.manual_seed(seed)
    pol = models.RoutingPolicy(models.ZOO[task]["tile"])
    x, y = _pooled(train_d), torch.from_numpy(train_d["gains"])
    xv, yv = _pooled(val_d), torch.from_numpy(val_d["gains"])
    mse, ep = fit_critic(pol, x, y, xv, yv, symmetries(task), epochs, seed)
    log(f"[{task}-policy] critic: best val MSE {mse:.5f} at epoch {ep}/{epochs}")
    return pol


def fit_critic(pol, x, y, xv, yv, syms: list[int], epochs: int, seed: int, batch: int = 32, one_cycle: bool = False,
               dev=None) -> tuple[float, int]:
    """Fits `pol.critic` on pooled inputs x → gains y (MSE, AdamW, the symmetries as augmentation; with `one_cycle` a
    one-cycle learning-rate schedule) and keeps the epoch with the lowest MSE on (xv, yv): (that MSE, its epoch)."""
    opt = torch.optim.AdamW(pol.critic.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, 2e-3, total_steps=epochs * math.ceil(len(x) / batch), pct_start=0.1) if one_cycle else None
    gen = torch.Generator().manual_seed(seed)
    best = (float("inf"), None, 0)
    for ep in range(epochs):
        pol.train()
        for idx, k in _batches(len(x), batch, gen, syms):
            idx = idx.to(dev) if dev is not None else idx
            loss = F.mse_loss(pol.critic(_sym(x[idx], k)), _sym(y[idx], k))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched:
                sched.step()
        with torch.no_grad():
            v = F.mse_loss(pol.critic(xv), yv).item()
        if v < best[0]:
            best = (v, copy.deepcopy(pol.critic.state_dict()), ep + 1)
    pol.critic.load_state_dict(best[1])
    return best[0], best[2]


def train_policy(task: str, d: dict, cost: np.ndarray, lam: float, epochs: int = 60, seed: int = 0, log=print,
                 val_d: dict | None = None, critic=None, samples: int = 8, lr: float = 5e-4,
                 train_body: bool = True):
    """REINFORCE of the actor on precomputed tile outcomes; returns the trained RoutingPolicy.

    Reward of action a on a tile: (1 − λ)·gain(a) − λ·cost(a). Baseline: the
    expected reward under the current policy with the critic's predicted
    gains; advantages scaled by their batch std; entropy bonus 0.01; `samples`
    actions drawn per tile and step. The actor's body starts from the
    critic's weights (its output layer from zero: a uniform policy). The
    critic (a RoutingPolicy from train_critic) is copied in and not trained
    here. With val_d, the epoch whose greedy route earns the highest mean
    validation reward is kept.
    """
    torch.manual_seed(seed)
    pol = models.RoutingPolicy(models.ZOO[task]["tile"])
    if critic is not None:
        pol.critic.load_state_dict(critic.critic.state_dict())
        # The actor starts from the critic's features with a uniform policy: REINFORCE
        # then only has to learn which predicted gains are worth their cost.
        pol.actor.load_state_dict(critic.critic.state_dict())
    nn.init.zeros_(pol.actor[-1].weight)
    nn.init.zeros_(pol.actor[-1].bias)
    params = pol.actor.parameters() if train_body or critic is None else pol.actor[-1].parameters()
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    x_all, gain_all = _pooled(d), torch.from_numpy(d["gains"])
    cost_t = torch.tensor(cost, dtype=torch.float32)[None, :, None, None]
    gen = torch.Generator().manual_seed(seed)
    syms = symmetries(task)
    best = (-float("inf"), copy.deepcopy(pol.actor.state_dict()), 0)
    for ep in range(epochs):
        pol.train()
        tot_r = 0.0
        for idx, k in _batches(len(x_all), 32, gen, syms):
            x, gain = _sym(x_all[idx], k), _sym(gain_all[idx], k)
            logits, g_hat = pol.forward_pooled(x)
            logp = F.log_softmax(logits, 1)
            p = logp.exp()
            # `samples` actions per tile (multi-sample REINFORCE: same estimator, less variance)
            a = torch.multinomial(p.permute(0, 2, 3, 1).reshape(-1, 3), samples, replacement=True, generator=gen)
            a = a.reshape(len(idx), *logits.shape[2:], samples).permute(0, 3, 1, 2)  # [B, samples, gh, gw]
            reward_all = (1 - lam) * gain - lam * cost_t  # reward of every action (known offline)
            r = reward_all.gather(1, a)
            baseline = (p * ((1 - lam) * g_hat - lam * cost_t)).sum(1, keepdim=True).detach()
            adv = r - baseline
            adv = adv / (adv.std() + 1e-3)  # scale-free steps whatever λ and the gains' units
            pg = -(adv * logp.gather(1, a)).mean()
            ent = -(p * logp).sum(1).mean()
            loss = pg - 0.01 * ent
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot_r += r.sum().item()
        if val_d is not None:
            with torch.no_grad():
                a = pol.actor(_pooled(val_d)).argmax(1, keepdim=True)
                rv = ((1 - lam) * torch.from_numpy(val_d["gains"]) - lam * cost_t).gather(1, a).mean().item()
            if rv > best[0]:
                best = (rv, copy.deepcopy(pol.actor.state_dict()), ep + 1)
        if (ep + 1) % 20 == 0 or ep == epochs - 1:
            log(f"[{task}-policy] λ={lam} epoch {ep + 1}/{epochs} mean reward {tot_r / gain_all[:, 0].numel():.4f}")
    if val_d is not None:
        pol.actor.load_state_dict(best[1])
        log(f"[{task}-policy] λ={lam}: kept epoch {best[2]} (val reward {best[0]:.4f})")
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


def plan_under_budget(gain: np.ndarray, flops, budget: float) -> tuple[np.ndarray, float]:
    """The serving planner's rule for one image under a FLOP budget.

    gain: the policy's `gain` output for the image, [3, gh, gw] (keep, f1, f2);
    flops: FLOPs of running each action on one tile window ([0, f1, f2]);
    budget: FLOPs left for local models (the request's budget minus f0 on the
    whole image and the policy). Per tile, the options keep → f1 → f2 are
    reduced to their upper convex hull in (FLOPs, gain): if f1's gain per FLOP
    is higher than f2's (and positive), the steps are keep→f1 at g1/c1 and,
    when g2 > g1, f1→f2 at (g2−g1)/(c2−c1); otherwise one step keep→f2 at
    g2/c2 when g2 > 0. All steps of all tiles are sorted by that ratio, highest
    first (ties: lower tile index = row-major ty·gw+tx first, then keep→… before
    f1→f2), and taken in that order when the tile is in the step's starting
    state and the step's extra FLOPs still fit. Returns (actions [gh, gw], FLOPs spent).
    """
    _, gh, gw = gain.shape
    c1, c2 = float(flops[1]), float(flops[2])
    steps = []
    for ty in range(gh):
        for tx in range(gw):
            g1, g2 = float(gain[1, ty, tx]), float(gain[2, ty, tx])
            i = ty * gw + tx
            if g1 > 0 and g1 / c1 > g2 / c2:
                steps.append((-g1 / c1, i, 0, 1))
                if g2 > g1:
                    steps.append((-(g2 - g1) / (c2 - c1), i, 1, 2))
            elif g2 > 0:
                steps.append((-g2 / c2, i, 0, 2))
    steps.sort()
    state = np.zeros(gh * gw, np.int64)
    cost = [0.0, c1, c2]
    left = float(budget)
    for _, i, frm, to in steps:
        extra = cost[to] - cost[frm]
        if state[i] == frm and extra <= left:
            state[i] = to
            left -= extra
    return state.reshape(gh, gw), float(budget) - left


def mask_miou(d: dict, action: int) -> float:
    return miou_from_confusion(confusion(d["preds"][:, action], d["labels"], d["n_classes"]))


def select_lambda(task, train_d, val_d, cost, frac_of, lams, max_frac=0.38, log=print):
    """Trains one policy per λ; keeps the most accurate on val whose FLOPs stay ≤ max_frac of f2-everywhere.

    max_frac is the 40% target less a 2-point margin for the drift from validation to test.
    frac_of(counts, n_scenes) → the routed FLOPs as a fraction of f2-everywhere's.
    The critic (value head) does not depend on λ: trained once, shared.
    """
    tile = models.ZOO[task]["tile"]
    critic = train_critic(task, train_d, val_d, log=log)
    results = []
    for lam in lams:
        pol = train_policy(task, train_d, cost, lam, log=log, val_d=val_d, critic=critic)
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
