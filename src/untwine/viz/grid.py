"""Image grids: uint8 cells laid out on a canvas, optionally labelled by row, saved as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from untwine.files import atomic_write

GAP = 2  # pixels between cells
LABEL_WIDTH = 72  # pixels for a row label such as "z3  KL 2.41"


def compose(
    cells: np.ndarray, labels: list[str] | None = None, muted: list[bool] | None = None
) -> Image.Image:
    """Lay out (rows, cols, C, H, W) uint8 cells on a grey canvas, a label left of each row.

    Labels may hold several lines; `muted` rows (e.g. collapsed latents) are drawn dimmed.
    """
    n_rows, n_cols, channels, height, width = cells.shape
    longest = max((len(line) for label in labels or [] for line in label.splitlines()), default=0)
    label_width = max(LABEL_WIDTH, 8 + 6 * longest) if labels else 0
    canvas = Image.new(
        "RGB",
        (label_width + n_cols * (width + GAP) + GAP, n_rows * (height + GAP) + GAP),
        (40, 40, 40),
    )
    draw = ImageDraw.Draw(canvas)
    for r in range(n_rows):
        top = GAP + r * (height + GAP)
        dim = bool(muted and muted[r])
        if labels:
            lines = labels[r].count("\n") + 1
            colour = (120, 120, 120) if dim else (230, 230, 230)
            draw.multiline_text((4, top + height // 2 - 6 * lines), labels[r], fill=colour)
        for c in range(n_cols):
            pixels = cells[r, c].transpose(1, 2, 0)
            if dim:
                pixels = pixels // 3
            tile = Image.fromarray(
                np.ascontiguousarray(pixels[..., 0] if channels == 1 else pixels)
            )
            left = label_width + GAP + c * (width + GAP)
            canvas.paste(tile.convert("RGB"), (left, top))
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a PNG atomically, creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
    return path
