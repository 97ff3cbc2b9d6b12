"""The official Shapes3D (3dshapes.h5) and MPI3D (npz) files, read where they lie.

Neither is copied whole into memory: Shapes3D is read from its HDF5 file in index-sorted
chunks, MPI3D is memory-mapped inside its npz (or, if the npz is compressed, unpacked once into
a uint8 cache under the data root).
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from untwine.data.base import DATASETS, GroundTruthDataset, data_root, read_npy_header
from untwine.data.shapes3d import FACTOR_NAMES as SHAPES3D_FACTORS
from untwine.data.shapes3d import FACTOR_SIZES as SHAPES3D_SIZES
from untwine.errors import UntwineError

SHAPES3D_FILE = "3dshapes.h5"
MPI3D_FILE = "mpi3d_toy.npz"
MPI3D_FACTORS = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
MPI3D_SIZES = (6, 6, 2, 3, 3, 40, 40)
MPI3D_GRIDS = (MPI3D_SIZES, (4, 4, 2, 3, 3, 40, 40))  # toy, realistic and real; complex


def _official_file(path: str | None, default: str, what: str, source: str) -> Path:
    """The file at `path`, else under the data root; a missing one says where to put it."""
    file = Path(path).expanduser() if path else data_root() / default
    if not file.is_file():
        raise UntwineError(
            f"{what} file not found at {file}; download {default} from {source} into "
            f"{data_root()} ($UNTWINE_DATA) or pass data.path=FILE"
        )
    return file


def grid_sizes(labels: np.ndarray, file: Path) -> tuple[int, ...]:
    """Factor sizes of per-image factor values (n, k) that form a complete C-order grid."""
    if labels.ndim != 2 or labels.shape[1] != len(SHAPES3D_FACTORS):
        raise UntwineError(f"{file}: labels must have {len(SHAPES3D_FACTORS)} columns")
    columns = [np.unique(c, return_inverse=True) for c in labels.T]
    sizes = tuple(len(values) for values, _ in columns)
    classes = np.stack([inverse.ravel() for _, inverse in columns], axis=1)
    expected = np.stack(np.unravel_index(np.arange(len(labels)), sizes), axis=1)
    if len(labels) != np.prod(sizes) or not np.array_equal(classes, expected):
        raise UntwineError(f"{file}: labels are not a complete grid in C-order")
    return sizes


@DATASETS.register("shapes3d-official")
class Shapes3DOfficial(GroundTruthDataset):
    """The official 3dshapes.h5 (`images` 480000x64x64x3, `labels` 480000x6), read in place.

    A batch's indices are sorted and read together, so each HDF5 chunk is read once per batch
    rather than once per image. Needs h5py (`pip install "untwine[hdf5]"`).
    """

    factor_names = SHAPES3D_FACTORS
    factor_sizes = SHAPES3D_SIZES
    observation_shape = (3, 64, 64)

    @staticmethod
    def example_options(workdir: Path) -> dict[str, Any]:
        """A tiny h5 in the official layout (a 2 x 2 x 2 x 2 x 2 x 2 grid), for tests."""
        import h5py

        sizes = (2,) * len(SHAPES3D_SIZES)
        labels = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1) / 10.0
        images = np.random.default_rng(0).integers(0, 256, (len(labels), 64, 64, 3), np.uint8)
        with h5py.File(workdir / SHAPES3D_FILE, "w") as file:
            file.create_dataset("images", data=images)
            file.create_dataset("labels", data=labels)
        return {"path": str(workdir / SHAPES3D_FILE)}

    def __init__(self, path: str | None = None) -> None:
        file = _official_file(
            path, SHAPES3D_FILE, "Shapes3D", "https://github.com/google-deepmind/3d-shapes"
        )
        try:
            import h5py
        except ImportError:
            raise UntwineError(
                'reading 3dshapes.h5 needs h5py: pip install "untwine[hdf5]"'
            ) from None
        try:
            self._file = h5py.File(file, "r")
        except OSError as error:
            raise UntwineError(f"cannot read {file} as HDF5: {error}") from None
        missing = {"images", "labels"} - set(self._file)
        if missing:
            raise UntwineError(f"{file} lacks the dataset {sorted(missing)[0]!r} of 3dshapes.h5")
        self.factor_sizes = grid_sizes(self._file["labels"][:], file)
        self._images = self._file["images"]
        if self._images.shape != (len(self), 64, 64, 3) or self._images.dtype != np.uint8:
            raise UntwineError(
                f"{file}: images must be uint8 ({len(self)}, 64, 64, 3), got "
                f"{self._images.dtype} {self._images.shape}"
            )

    def observations(self, indices: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(np.asarray(indices), return_inverse=True)
        return self._images[unique][inverse.ravel()]  # h5py reads increasing indices in one go


@DATASETS.register("mpi3d-official")
class MPI3DOfficial(GroundTruthDataset):
    """An official MPI3D npz (`images` N x 64 x 64 x 3, uint8), memory-mapped in place.

    Factors are implied by C-order over the 6, 6, 2, 3, 3, 40, 40 grid (toy, realistic, real:
    1,036,800 images) or 4, 4, 2, 3, 3, 40, 40 (complex), told apart by N; `sizes` sets another.
    A compressed npz is unpacked once into a uint8 cache under the data root.
    """

    factor_names = MPI3D_FACTORS
    factor_sizes = MPI3D_SIZES
    observation_shape = (3, 64, 64)

    @staticmethod
    def example_options(workdir: Path) -> dict[str, Any]:
        """A tiny npz in the official layout (a 2 x 2 x 1 x 1 x 1 x 2 x 3 grid), for tests."""
        sizes = (2, 2, 1, 1, 1, 2, 3)
        images = np.random.default_rng(0).integers(0, 256, (np.prod(sizes), 64, 64, 3), np.uint8)
        np.savez(workdir / MPI3D_FILE, images=images)
        return {"path": str(workdir / MPI3D_FILE), "sizes": sizes}

    def __init__(self, path: str | None = None, sizes: tuple[int, ...] | None = None) -> None:
        file = _official_file(
            path, MPI3D_FILE, "MPI3D", "https://github.com/rr-learning/disentanglement_dataset"
        )
        self._images = npz_member_memmap(file, "images")
        n = len(self._images)
        if sizes is None:
            sizes = next((s for s in MPI3D_GRIDS if np.prod(s) == n), None)
            if sizes is None:
                raise UntwineError(
                    f"{file} holds {n} images, not a known MPI3D grid "
                    f"({', '.join(str(np.prod(s)) for s in MPI3D_GRIDS)}); give data.sizes"
                )
        if len(sizes) != len(MPI3D_FACTORS) or np.prod(sizes) != n:
            raise UntwineError(
                f"data.sizes {list(sizes)} must be {len(MPI3D_FACTORS)} sizes whose product is "
                f"the file's {n} images"
            )
        self.factor_sizes = tuple(sizes)
        if self._images.shape[1:] != (64, 64, 3) or self._images.dtype != np.uint8:
            raise UntwineError(
                f"{file}: images must be uint8 (N, 64, 64, 3), got "
                f"{self._images.dtype} {self._images.shape}"
            )

    def observations(self, indices: np.ndarray) -> np.ndarray:
        return self._images[np.asarray(indices)]


def npz_member_memmap(file: Path, key: str) -> np.ndarray:
    """A read-only memory map of array `key` in an npz; a compressed one goes via a cache."""
    try:
        with zipfile.ZipFile(file) as archive:
            if f"{key}.npy" not in archive.namelist():
                names = ", ".join(n.removesuffix(".npy") for n in archive.namelist())
                raise UntwineError(f"{file} has no array {key!r}; it has {names}")
            info = archive.getinfo(f"{key}.npy")
            with archive.open(info) as stream:
                shape, dtype = read_npy_header(stream)
                if info.compress_type != zipfile.ZIP_STORED:
                    return _unpacked_cache(file, stream, shape, dtype)
                header_length = stream.tell()
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        if isinstance(error, UntwineError):
            raise
        raise UntwineError(f"cannot read {file} as an npz file: {error}") from None
    with open(file, "rb") as raw:  # the member's bytes start after its local file header
        raw.seek(info.header_offset)
        local = raw.read(30)
        name_length, extra_length = struct.unpack("<HH", local[26:30])
    offset = info.header_offset + 30 + name_length + extra_length + header_length
    return np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=shape)


def _unpacked_cache(file: Path, stream, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Stream a compressed member into a .npy under the data root once; memory-map it."""
    stat = file.stat()
    cache = data_root() / "cache" / f"{file.stem}-{stat.st_size}-{stat.st_mtime_ns}.npy"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}.npy")
        out = np.lib.format.open_memmap(tmp, "w+", dtype, shape)
        flat = out.reshape(-1)
        step = 1 << 24
        for start in range(0, flat.size, step):
            count = min(step, flat.size - start)
            flat[start : start + count] = np.frombuffer(stream.read(count * dtype.itemsize), dtype)
        out.flush()
        del out, flat
        os.replace(tmp, cache)
    return np.load(cache, mmap_mode="r")
