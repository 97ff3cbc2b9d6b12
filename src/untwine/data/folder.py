"""A folder of images (subfolders included), centre-cropped, resized and cached as uint8."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from untwine.data.base import DATASETS, data_root
from untwine.data.user import UserDataset
from untwine.errors import UntwineError, UntwineWarning, os_error_reason

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@DATASETS.register("folder")
class FolderDataset(UserDataset):
    """A folder of images (png, jpg, ...; subfolders included), centre-cropped and resized.

    Every image is cropped to a centred square, resized to `size` x `size`, and converted to
    RGB, or to grey when every image is grey (`color`); unreadable files are skipped and named.
    The decoded images are cached (uint8) under the data root until a file changes.
    With `frames`, the images are frames ordered in time: within each folder, in the natural
    order of their names (frame2 before frame10), consecutive frames pair up for the pair models.
    """

    @staticmethod
    def example_options(workdir: Path) -> dict[str, Any]:
        """A folder of twelve small images, for tests."""
        folder = workdir / "images"
        folder.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), np.uint8)).save(folder / f"{i}.png")
        return {"path": str(folder), "size": 16}

    def __init__(
        self,
        path: str,
        size: int = 64,
        color: Literal["auto", "rgb", "grey"] = "auto",
        validation: float = 0.1,
        split_seed: int = 0,
        frames: bool = False,
    ) -> None:
        self.notes = []
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise UntwineError(f"image folder {folder} does not exist or is not a folder")
        if size < 4:
            raise UntwineError(f"data.size must be at least 4 pixels, got {size}")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UntwineError(
                f"no images in {folder}; accepted: {', '.join(s[1:] for s in IMAGE_SUFFIXES)}"
            )
        files, broken = _reachable(folder, files)
        images, skipped, kept = _cached_folder(folder, files, size, color)
        skipped = broken + skipped
        if skipped:
            shown = "; ".join(skipped[:5]) + (
                f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            )
            warnings.warn(
                f"skipped {len(skipped)} unreadable image(s) in {folder}: {shown}",
                UntwineWarning,
                stacklevel=2,
            )
        if len(images) == 0:
            raise UntwineError(f"none of the {len(files)} images in {folder} could be read")
        pairs = _consecutive_frames(files, kept, folder) if frames else None
        self._setup(images, "nhwc", None, (), validation, split_seed, pairs)

    @classmethod
    def suggested_model_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return {} if options.get("size", 64) == 64 else {"arch": "mlp"}


def _consecutive_frames(files: list[Path], kept: np.ndarray, folder: Path) -> np.ndarray:
    """Image indices (M, 2) of frames that follow each other in one folder, both readable."""
    image_of = dict(zip(kept.tolist(), range(len(kept)), strict=True))  # file -> image index
    order = sorted(range(len(files)), key=lambda i: (files[i].parent, _natural(files[i].name)))
    pairs = [
        (image_of[a], image_of[b])
        for a, b in itertools.pairwise(order)
        if files[a].parent == files[b].parent and a in image_of and b in image_of
    ]
    if not pairs:
        raise UntwineError(
            f"data.frames pairs consecutive frames of one folder, but no folder in {folder} "
            "holds two readable frames"
        )
    return np.array(pairs, np.int64)


def _natural(name: str) -> list[int | str]:
    """A sort key that orders the numbers within names by value: frame2 before frame10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _reachable(folder: Path, files: list[Path]) -> tuple[list[Path], list[str]]:
    """The files that can be opened, and the links that cannot ('name (reason)')."""
    reachable, broken = [], []
    for file in files:
        try:
            file.stat()
            reachable.append(file)
        except OSError as error:
            reason = "a link to nothing" if error.errno == errno.ENOENT else os_error_reason(error)
            broken.append(f"{file.relative_to(folder)} ({reason})")
    return reachable, broken


def _cached_folder(
    folder: Path, files: list[Path], size: int, color: str
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Decoded images of `files` (n, size, size, C), the skipped ones, and which of `files`
    each image is (n,), via a cache file."""
    digest = hashlib.sha1(f"{folder.resolve()}|{size}|{color}".encode())
    for file in files:
        stat = file.stat()
        digest.update(f"|{file.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    cache = data_root() / "cache" / f"folder-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            if "kept" in stored.files:  # older caches did not say which files they hold
                return stored["images"], stored["skipped"].tolist(), stored["kept"]
    images, skipped, kept = _read_images(folder, files, size, color)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, images=images, skipped=np.array(skipped, dtype=str), kept=kept)
    os.replace(tmp, cache)
    return images, skipped, kept


def _read_images(
    folder: Path, files: list[Path], size: int, color: str
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Decode, crop and resize each file; unreadable ones are listed as 'name (reason)'; and
    the index in `files` of each decoded image."""
    decoded, skipped, kept = [], [], []
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                image.load()
                decoded.append(_square(image, size))
                kept.append(i)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
            reason = str(e).split(" (")[0] if str(e) else type(e).__name__
            skipped.append(f"{file.relative_to(folder)} ({reason})")
    if color == "auto":
        grey = all(image.mode in ("1", "L", "I", "I;16", "F") for image in decoded)
        color = "grey" if grey else "rgb"
    channels = 1 if color == "grey" else 3
    images = np.zeros((len(decoded), size, size, channels), np.uint8)
    for i, image in enumerate(decoded):
        images[i] = as_pixels(image, size, channels)
    return images, skipped, np.array(kept, np.int64)


def as_pixels(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """An image as a folder dataset holds it: the centred square, `size` x `size`, uint8
    (size, size, channels) in grey (1) or RGB (3)."""
    square = _square(image, size) if image.size != (size, size) else image
    mode = "L" if channels == 1 else "RGB"
    return np.array(_to_mode(square, mode)).reshape(size, size, channels)


def _square(image: Image.Image, size: int) -> Image.Image:
    """The centred square crop of `image`, resized to `size` x `size`."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    if crop.mode not in ("1", "L", "RGB", "RGBA", "LA", "P"):
        crop = crop.convert("RGB" if len(crop.getbands()) >= 3 else "L")
    return crop.resize((size, size), Image.Resampling.LANCZOS)


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert to L or RGB; transparency is laid on white, as a viewer shows it."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert(mode)
