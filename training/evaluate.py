"""Inference the way the server runs it, and the metrics we report.

`predict_full` is a global model on the whole image (f0), `predict_tiled` is a
local model on a grid of tiles, each with a halo of real neighbour pixels and
zeros beyond the image border (lib/segment.ts pads with zeros too), the halo
cropped off afterwards. mIoU is dataset-level: per class, intersections and
unions summed over all scenes, then averaged over classes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple))


def _device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_full(model, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """Logits [N, C, H, W] of a model run on whole images [N, H, W] (zero-padded to its multiple)."""
    model.eval()
    dev = _device(model)
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch]))[:, None].to(dev)
        h, w = x.shape[-2:]
        y = model(_pad_to(x, model.multiple))[..., :h, :w]
        out.append(y.float().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def predict_tiled(model, images: np.ndarray, tile: int, halo: int, batch: int = 64) -> np.ndarray:
    """Logits [N, C, H, W] of a local model run tile by tile with a zero-padded halo."""
    x = torch.from_numpy(np.ascontiguousarray(images))[:, None].to(_device(model))
    return tiled_logits(model, x, tile, halo, batch).float().cpu().numpy()


@torch.no_grad()
def tiled_logits(model, x: torch.Tensor, tile: int, halo: int, batch: int = 64) -> torch.Tensor:
    """`predict_tiled` on a tensor [N, 1, H, W] already on the model's device; logits stay there."""
    model.eval()
    n, _, H, W = x.shape
    gh, gw = math.ceil(H / tile), math.ceil(W / tile)
    x = F.pad(x, (halo, gw * tile - W + halo, halo, gh * tile - H + halo))
    win = tile + 2 * halo
    windows = torch.stack(
        [x[:, :, ty * tile : ty * tile + win, tx * tile : tx * tile + win] for ty in range(gh) for tx in range(gw)],
        dim=1,
    ).reshape(n * gh * gw, 1, win, win)
    ys = []
    for i in range(0, len(windows), batch):
        w = windows[i : i + batch]
        ys.append(model(_pad_to(w, model.multiple))[..., halo : halo + tile, halo : halo + tile])
    y = torch.cat(ys)
    c = y.shape[1]
    y = y.reshape(n, gh, gw, c, tile, tile).permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * tile, gw * tile)
    return y[..., :H, :W]


def confusion(pred: np.ndarray, label: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix [gt, pred] summed over all pixels."""
    idx = label.astype(np.int64).ravel() * n_classes + pred.astype(np.int64).ravel()
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def miou_from_confusion(cm: np.ndarray) -> float:
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - inter
    valid = union > 0
    return float((inter[valid] / union[valid]).mean())


def miou(pred: np.ndarray, label: np.ndarray, n_classes: int) -> float:
    """Dataset-level mean IoU of predicted class maps against labels."""
    return miou_from_confusion(confusion(pred, label, n_classes))


def tile_iou(pred: np.ndarray, label: np.ndarray, n_classes: int, tile: int) -> np.ndarray:
    """Per-tile mIoU [N, gh, gw] over the classes present in the tile's prediction or label.

    This is the IoU in PaSeR's reward: it is what a routing decision changes.
    """
    n, H, W = label.shape
    gh, gw = math.ceil(H / tile), math.ceil(W / tile)
    out = np.zeros((n, gh, gw), np.float32)
    for ty in range(gh):
        for tx in range(gw):
            p = pred[:, ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile].reshape(n, -1)
            g = label[:, ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile].reshape(n, -1)
            s = np.zeros(n)
            k = np.zeros(n)
            for c in range(n_classes):
                inter = ((p == c) & (g == c)).sum(1)
                union = ((p == c) | (g == c)).sum(1)
                has = union > 0
                s += np.where(has, inter / np.maximum(union, 1), 0)
                k += has
            out[:, ty, tx] = s / np.maximum(k, 1)
    return out


def tile_stats(pred: np.ndarray, label: np.ndarray, n_classes: int, tile: int) -> np.ndarray:
    """Per-tile, per-class (intersection, union) pixel counts: [N, 2, C, gh, gw]."""
    n, H, W = label.shape
    gh, gw = math.ceil(H / tile), math.ceil(W / tile)
    out = np.zeros((n, 2, n_classes, gh, gw), np.float64)
    for ty in range(gh):
        for tx in range(gw):
            p = pred[:, ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile].reshape(n, -1)
            g = label[:, ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile].reshape(n, -1)
            for c in range(n_classes):
                out[:, 0, c, ty, tx] = ((p == c) & (g == c)).sum(1)
                out[:, 1, c, ty, tx] = ((p == c) | (g == c)).sum(1)
    return out


def tile_gain(stats: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Each tile's IoU gain over the base prediction, measured where it counts.

    stats, base: [N, 2, C, gh, gw] from tile_stats (an action's and f0's).
    The gain is the tile's first-order contribution to the dataset-level
    mIoU, ∂mIoU = (1/C)·Σ_c (ΔI_c/U_c − I_c·ΔU_c/U_c²) at f0's totals I_c, U_c,
    times the number of tiles (so a value is "mIoU points if every tile
    gained like this"). Unlike a per-tile mIoU, it is additive over tiles,
    so spending a budget greedily by gain per FLOP maximises the dataset mIoU,
    and a few false-positive pixels in an empty tile are not worth half a tile.
    """
    tot_i = base[:, 0].sum((0, 2, 3))  # [C]
    tot_u = np.maximum(base[:, 1].sum((0, 2, 3)), 1)
    d_i = stats[:, 0] - base[:, 0]
    d_u = stats[:, 1] - base[:, 1]
    c = len(tot_i)
    per = d_i / tot_u[None, :, None, None] - tot_i[None, :, None, None] * d_u / (tot_u**2)[None, :, None, None]
    n_tiles = base.shape[0] * base.shape[3] * base.shape[4]
    return (per.sum(1) / c * n_tiles).astype(np.float32)


def entropy_features(logits: np.ndarray) -> np.ndarray:
    """The policy's input from f0's logits: [N, 2, H, W] = (argmax/(C-1), entropy/ln C)."""
    c = logits.shape[1]
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    ent = -(p * np.log(np.clip(p, 1e-12, 1))).sum(1) / math.log(c)
    arg = logits.argmax(1) / (c - 1)
    return np.stack([arg, ent], 1).astype(np.float32)
