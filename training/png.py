"""Minimal PNG writer (8-bit grey or RGB) so the pipeline needs no imaging library."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Writes uint8 [H, W] (grey) or [H, W, 3] (RGB) pixels as a PNG file."""
    px = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = px.shape[:2]
    colour = 2 if px.ndim == 3 else 0
    rows = px.reshape(h, -1)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    Path(path).write_bytes(data)


PALETTES = {
    "digits": np.array([[0, 0, 0], [255, 200, 40]], np.uint8),
    "micrograph": np.array([[20, 20, 60], [60, 200, 90], [240, 110, 40]], np.uint8),
}


def colour_mask(task: str, label: np.ndarray) -> np.ndarray:
    """A label map as RGB, one colour per class."""
    return PALETTES[task][label]
