"""An array file of images or rows (.npy memory-mapped, or .npz), with optional factors."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from untwine.data.base import DATASETS, read_npy_header
from untwine.data.user import UserDataset, discretise
from untwine.errors import UntwineError


@DATASETS.register("array")
class ArrayDataset(UserDataset):
    """An array file: images (N,H,W), (N,H,W,C) or (N,C,H,W), or rows (N,F); .npy or .npz.

    In an .npz, the observations are `key` (default: `images`, or the only other array),
    factors come from `factors` (N, k), named by `factor_names` if present, and `pairs` (M, 2)
    lists observation indices that pair up for the pair models (two frames of one video, two
    photos of one object). uint8 images are scaled to [0, 1]; any other dtype is used as
    float32, as it is. A .npy is memory-mapped.
    """

    @staticmethod
    def example_options(workdir: Path) -> dict[str, Any]:
        """Forty 8 x 8 images whose two factors are known, for tests."""
        rng = np.random.default_rng(0)
        factors = np.stack([rng.integers(0, 3, 40), rng.integers(0, 4, 40)], axis=1)
        images = rng.integers(0, 256, (40, 8, 8), np.uint8)
        np.savez(workdir / "images.npz", images=images, factors=factors)
        return {"path": str(workdir / "images.npz")}

    def __init__(
        self,
        path: str,
        key: str | None = None,
        bins: int = 20,
        validation: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        self.notes = []
        file = Path(path).expanduser()
        data, factors, names, pairs = _read_array_file(file, key)
        layout = _layout(data.shape, file)
        _check_values(data, file)
        if data.ndim == 3:
            data = data[..., None]
        labels = None
        if factors is not None:
            if factors.ndim == 1:
                factors = factors[:, None]
            if factors.ndim != 2 or len(factors) != len(data):
                raise UntwineError(
                    f"{file}: factors must be (N, k) with N = {len(data)} observations, "
                    f"got shape {factors.shape}"
                )
            names = names or tuple(f"factor_{i}" for i in range(factors.shape[1]))
            if len(names) != factors.shape[1]:
                raise UntwineError(
                    f"{file}: factor_names has {len(names)} names for {factors.shape[1]} factors"
                )
            labels, notes = discretise(list(factors.T), names, bins)
            self.notes.extend(notes)
        if layout == "rows":
            self.feature_names = tuple(f"x{i}" for i in range(data.shape[1]))
        if pairs is not None:
            pairs = _checked_pairs(pairs, len(data), file)
        self._setup(data, layout, labels, names, validation, split_seed, pairs)

    @classmethod
    def suggested_model_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        file = Path(options["path"]).expanduser()
        shape = _array_shape(file, options.get("key"))
        if shape is None:
            return {}
        if len(shape) == 2:
            return {"arch": "mlp", "likelihood": "gaussian", "output": "linear"}
        spatial = shape[1:3] if _layout(shape, file) == "nhwc" else shape[2:4]
        return {} if tuple(spatial) == (64, 64) else {"arch": "mlp"}


def _read_array_file(
    file: Path, key: str | None
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...], np.ndarray | None]:
    """Observations, factors (or None), factor names and pairs (or None) from a .npy or .npz."""
    if not file.is_file():
        raise UntwineError(f"array file {file} does not exist")
    if file.suffix not in (".npy", ".npz"):
        raise UntwineError(f"array file {file} must end in .npy or .npz")
    try:
        if file.suffix == ".npy":
            if key is not None:
                raise UntwineError("data.key only applies to .npz files")
            return np.load(file, mmap_mode="r", allow_pickle=False), None, (), None
        with np.load(file, allow_pickle=False) as archive:
            key = _observation_key(archive.files, key, file)
            factors = archive["factors"] if "factors" in archive.files else None
            names = archive["factor_names"] if "factor_names" in archive.files else ()
            pairs = archive["pairs"] if "pairs" in archive.files else None
            return archive[key], factors, tuple(str(n) for n in np.ravel(names)), pairs
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, UntwineError):
            raise
        raise UntwineError(f"cannot read {file} as {file.suffix[1:]}: {error}") from None


def _check_values(data: np.ndarray, file: Path) -> None:
    """Observations must exist and be real, finite numbers: a NaN pixel would surface much
    later as a NaN loss, blamed on the learning rate."""
    if len(data) == 0:
        raise UntwineError(f"{file} holds no observations (its array has length 0)")
    if data.dtype == bool or not np.issubdtype(data.dtype, np.number):
        raise UntwineError(f"{file}: observations must be numbers, got dtype {data.dtype}")
    if np.issubdtype(data.dtype, np.complexfloating):
        raise UntwineError(f"{file}: observations must be real numbers, got dtype {data.dtype}")
    if not np.issubdtype(data.dtype, np.floating):
        return
    rows = max(1, 2**24 // max(1, data[0].size))  # a memory-mapped file is read a slice at a time
    for start in range(0, len(data), rows):
        finite = np.isfinite(data[start : start + rows]).reshape(-1, data[0].size).all(axis=1)
        if not finite.all():
            first = start + int(np.argmin(finite))
            raise UntwineError(
                f"{file}: observation {first} holds NaN or infinite values; "
                "replace or drop them before training"
            )


def _checked_pairs(pairs: np.ndarray, n: int, file: Path) -> np.ndarray:
    """`pairs` as (M, 2) int64 indices of the n observations, or a one-line error."""
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise UntwineError(f"{file}: pairs must be (M, 2) observation indices, got {pairs.shape}")
    if not np.issubdtype(pairs.dtype, np.integer):
        raise UntwineError(f"{file}: pairs must be integer indices, got dtype {pairs.dtype}")
    outside = (pairs < 0) | (pairs >= n)
    if outside.any():
        row = int(np.argmax(outside.any(axis=1)))
        raise UntwineError(
            f"{file}: pairs row {row} is {pairs[row].tolist()}, outside the {n} observations "
            f"(indices 0..{n - 1})"
        )
    return pairs.astype(np.int64)


def _observation_key(keys: list[str], key: str | None, file: Path) -> str:
    """Which array of an .npz holds the observations."""
    others = [k for k in keys if k not in ("factors", "factor_names", "pairs")]
    if key is not None:
        if key not in keys:
            raise UntwineError(f"{file} has no array {key!r}; it has {', '.join(keys)}")
        return key
    if "images" in keys:
        return "images"
    if len(others) == 1:
        return others[0]
    raise UntwineError(
        f"{file} holds {len(others)} arrays ({', '.join(others)}); name one with data.key=NAME"
    )


def _array_shape(file: Path, key: str | None) -> tuple[int, ...] | None:
    """The observations' shape read from the file header only; None if it cannot be read."""
    try:
        if file.suffix == ".npy":
            return tuple(np.load(file, mmap_mode="r", allow_pickle=False).shape)
        with zipfile.ZipFile(file) as archive:
            keys = [name.removesuffix(".npy") for name in archive.namelist()]
            with archive.open(f"{_observation_key(keys, key, file)}.npy") as stream:
                return read_npy_header(stream)[0]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UntwineError):
        return None


def _layout(shape: tuple[int, ...], file: Path | None) -> Literal["nhwc", "nchw", "rows"]:
    """Where the channels are: (N,H,W[,C]) -> nhwc, (N,C,H,W) -> nchw, (N,F) -> rows."""
    if len(shape) == 2:
        return "rows"
    if len(shape) == 3:
        return "nhwc"  # grey, given a channel axis on load
    if len(shape) == 4 and shape[3] in (1, 3):
        return "nhwc"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    raise UntwineError(
        f"{file}: cannot use an array of shape {tuple(shape)}; accepted: (N,H,W), (N,H,W,C) or "
        "(N,C,H,W) images with C = 1 or 3, or (N,F) rows"
    )
