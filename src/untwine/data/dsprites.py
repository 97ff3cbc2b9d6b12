"""dSprites: procedurally rendered on the official grid, or read from the official npz file."""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from untwine.data.base import DATASETS, GroundTruthDataset, data_root, read_npy_header
from untwine.errors import UntwineError

FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)  # both ends included, as in the official file
POSITIONS = np.linspace(0.0, 1.0, 32)

IMAGE_SIZE = 64
PATCH = 33  # a sprite is drawn in a 33x33 patch centred on its pixel 16
MAX_RADIUS = 15.5  # pixels at scale 1; every shape fits this disc at every orientation
SUPERSAMPLE = 4  # subpixels per pixel side, for clean binary edges


@functools.cache
def _heart_frame() -> tuple[float, float]:
    """Centre height and radius of the heart curve's bounding-box-centred enclosing disc."""
    t = np.linspace(-1.5, 1.5, 1201)
    x, y = np.meshgrid(t, t)
    inside = (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0
    y_centre = (y[inside].max() + y[inside].min()) / 2
    radius = np.sqrt(x[inside] ** 2 + (y[inside] - y_centre) ** 2).max()
    return float(y_centre), float(radius)


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether unit-disc coordinates (u right, v up) fall inside the shape."""
    if shape == "square":
        half_side = 1 / np.sqrt(2)  # the corners touch the unit circle
        return (np.abs(u) <= half_side) & (np.abs(v) <= half_side)
    if shape == "ellipse":
        return u**2 + (v / 0.5) ** 2 <= 1
    y_centre, radius = _heart_frame()
    x, y = u * radius, v * radius + y_centre
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


@functools.cache
def render_sprites() -> np.ndarray:
    """Every (shape, scale, orientation) sprite, uint8 (3, 6, 40, PATCH, PATCH) in {0, 255}."""
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    coords = (np.arange(PATCH)[:, None] - PATCH // 2 + sub[None, :]).ravel()
    x, y_down = np.meshgrid(coords, coords)  # (P*S, P*S), rows go down the image
    y = -y_down
    angles = ORIENTATIONS[:, None, None]  # (40, 1, 1)
    sprites = np.zeros((len(SHAPES), len(SCALES), len(ORIENTATIONS), PATCH, PATCH), np.uint8)
    for i, shape in enumerate(SHAPES):
        for j, scale in enumerate(SCALES):
            radius = scale * MAX_RADIUS
            # rotate the sampling grid by -angle: the shape turns counter-clockwise by angle
            u = (np.cos(angles) * x + np.sin(angles) * y) / radius  # (40, P*S, P*S)
            v = (-np.sin(angles) * x + np.cos(angles) * y) / radius
            cover = _inside(shape, u, v).reshape(-1, PATCH, SUPERSAMPLE, PATCH, SUPERSAMPLE)
            sprites[i, j] = np.where(cover.mean(axis=(2, 4)) >= 0.5, 255, 0)
    return sprites


@DATASETS.register("dsprites")
class DSprites(GroundTruthDataset):
    """Procedural dSprites: 3 shapes x 6 scales x 40 orientations x 32 x 32 positions, 64x64 binary.

    Images are pasted from 720 pre-rendered sprites, so the whole grid costs about 1 MB and a
    batch is assembled on the fly. One position step moves the sprite by exactly one pixel; the
    sprite centre runs over pixels 16..47, so no sprite ever touches the border. position_y grows
    downwards. Pixel values differ from the official file; the grid and index order do not.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(self) -> None:
        self._sprites = render_sprites().reshape(-1, PATCH, PATCH)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        factors = self.index_to_factors(indices)
        sprite = np.ravel_multi_index(tuple(factors[:, :3].T), FACTOR_SIZES[:3])
        n = len(factors)
        offsets = np.arange(PATCH)
        rows = factors[:, 4, None, None] + offsets[None, :, None]  # (n, P, 1)
        cols = factors[:, 3, None, None] + offsets[None, None, :]  # (n, 1, P)
        canvas = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        canvas[np.arange(n)[:, None, None], rows, cols] = self._sprites[sprite]
        return canvas[..., None]


OFFICIAL_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"


@DATASETS.register("dsprites-official")
class DSpritesOfficial(GroundTruthDataset):
    """The official dSprites npz (keys `imgs`, `latents_classes`), held as packed bits (~380 MB).

    Looks for the file at `path`, else under the data root ($UNTWINE_DATA). The first use streams
    the images into a bit-packed cache beside the other caches; later uses memory-map it.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    @staticmethod
    def example_options(workdir: Path) -> dict[str, Any]:
        """A tiny file in the official layout (a 3 x 2 x 2 x 2 x 2 grid), for tests."""
        sizes = (3, 2, 2, 2, 2)
        classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
        images = DSprites().observations_from_factors(classes)[..., 0] // 255
        path = workdir / OFFICIAL_FILE
        np.savez(path, imgs=images, latents_classes=np.pad(classes, ((0, 0), (1, 0))))
        return {"path": str(path)}

    def __init__(self, path: str | None = None) -> None:
        file = Path(path).expanduser() if path else data_root() / OFFICIAL_FILE
        if not file.is_file():
            raise UntwineError(
                f"dSprites file not found at {file}; download {OFFICIAL_FILE} from "
                f"https://github.com/deepmind/dsprites-dataset into {data_root()} "
                "($UNTWINE_DATA) or pass data.path=FILE"
            )
        try:
            with np.load(file) as archive:
                missing = {"imgs", "latents_classes"} - set(archive.files)
                if missing:
                    raise UntwineError(
                        f"{file} lacks the key {sorted(missing)[0]!r} of the official dSprites npz"
                    )
                classes = archive["latents_classes"]
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            if isinstance(error, UntwineError):
                raise
            raise UntwineError(f"cannot read {file} as an npz file: {error}") from None
        self.factor_sizes = _grid_sizes(classes[:, 1:], file)
        self._bits, (height, width) = _packed_images(file)
        self.observation_shape = (1, height, width)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        _, height, width = self.observation_shape
        bits = self._bits[np.asarray(indices)]
        pixels = np.unpackbits(bits, axis=1, count=height * width)
        return (pixels * np.uint8(255)).reshape(-1, height, width, 1)


def _grid_sizes(classes: np.ndarray, file: Path) -> tuple[int, ...]:
    """Factor sizes of a complete C-order grid of class indices, or a clear error."""
    if classes.ndim != 2 or classes.shape[1] != len(FACTOR_NAMES):
        raise UntwineError(f"{file}: latents_classes must have 6 columns (colour + 5 factors)")
    sizes = tuple(int(s) for s in classes.max(axis=0) + 1)
    grid = np.stack(np.unravel_index(np.arange(len(classes)), sizes), axis=1)
    if len(classes) != np.prod(sizes) or not np.array_equal(grid, classes):
        raise UntwineError(f"{file}: latents_classes is not a complete grid in C-order")
    return sizes


def _packed_images(file: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Memory-map the bit-packed copy of the file's images, building it on first use."""
    stat = file.stat()
    cache = data_root() / "cache" / f"{file.stem}-{stat.st_size}-{stat.st_mtime_ns}.bits.npy"
    with zipfile.ZipFile(file) as archive, archive.open("imgs.npy") as stream:
        shape, dtype = read_npy_header(stream)
        if not cache.exists():
            _stream_pack(stream, shape, dtype, cache)
    return np.load(cache, mmap_mode="r"), shape[1:3]


def _stream_pack(stream, shape: tuple[int, ...], dtype: np.dtype, cache: Path) -> None:
    """Read images in chunks and write them as packed bits, atomically; memory stays bounded."""
    n, height, width = shape
    row_bytes = height * width * dtype.itemsize
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}.npy")
    packed = np.lib.format.open_memmap(tmp, "w+", np.uint8, (n, (height * width + 7) // 8))
    chunk = 8192
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        buffer = stream.read(rows * row_bytes)
        pixels = np.frombuffer(buffer, dtype).reshape(rows, height * width)
        packed[start : start + rows] = np.packbits(pixels > 0, axis=1)
    packed.flush()
    del packed
    os.replace(tmp, cache)
