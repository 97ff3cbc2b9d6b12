"""The user's own data: a folder of images, an array file or a CSV table.

Each is read once into memory (uint8 images stay uint8; a .npy file is memory-mapped), split
into training and validation observations with a fixed seed, and may carry factors, so that
the supervised metrics score models on it too. Continuous factors are discretised into
quantile bins, as the metrics need classes; `notes` says what was done.
"""

from __future__ import annotations

import csv
import hashlib
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from untwine.data.base import DATASETS, Dataset, data_root, read_npy_header
from untwine.errors import UntwineError, UntwineWarning

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class UserDataset(Dataset):
    """Observations in memory with optional factors and a seeded train/validation split.

    `validation` of the observations (chosen by `split_seed`) are held out: training never
    draws them, and `evaluate` reads reconstruction and KL on them. The metrics draw factor
    vectors from the data and pick an observation with exactly those factors.
    """

    def _setup(
        self,
        data: np.ndarray,
        layout: Literal["nhwc", "nchw", "rows"],
        factors: np.ndarray | None,
        factor_names: tuple[str, ...],
        validation: float,
        split_seed: int,
    ) -> None:
        """Hold `data`, check and index the factors, and split; the subclasses' last step."""
        if not 0 <= validation < 1:
            raise UntwineError(f"data.validation must be in [0, 1), got {validation}")
        self._data, self._layout = data, layout
        n = len(data)
        if layout == "rows":
            self.observation_shape = (data.shape[1],)
        elif layout == "nchw":
            self.observation_shape = tuple(data.shape[1:])
        else:
            self.observation_shape = (data.shape[3], data.shape[1], data.shape[2])
        self._factors = None
        if factors is not None:
            self._factors = factors
            self.factor_names = factor_names
            self.factor_sizes = tuple(int(s) for s in factors.max(axis=0) + 1)
            if np.prod(self.factor_sizes, dtype=float) >= 2**62:
                raise UntwineError(
                    f"{len(factor_names)} factors with {self.factor_sizes} classes make too many "
                    "combinations to index; use fewer factors or fewer data.bins"
                )
        order = np.random.default_rng(split_seed).permutation(n)
        held = round(validation * n)
        if validation > 0 and n >= 2:
            held = min(max(held, 1), n - 1)
        self.validation_indices = np.sort(order[:held])
        self.training_indices = np.sort(order[held:])
        self.notes.append(
            f"{n} observations: {len(self.training_indices)} train, {held} validation "
            f"(data.validation={validation}, data.split_seed={split_seed})"
        )

    def __len__(self) -> int:
        return len(self._data)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        batch = self._data[np.asarray(indices)]
        if self._layout == "nchw":
            batch = batch.transpose(0, 2, 3, 1)
        return batch if batch.dtype == np.uint8 else batch.astype(np.float32)

    def sample_indices(self, n: int, generator: torch.Generator) -> np.ndarray:
        """Training draws come from the training split only."""
        picks = torch.randint(len(self.training_indices), (n,), generator=generator).numpy()
        return self.training_indices[picks]

    def held_out_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The validation split (a random n of it when larger); random draws without one."""
        if len(self.validation_indices) == 0:
            return rng.integers(0, len(self), n)
        if len(self.validation_indices) <= n:
            return self.validation_indices
        return np.sort(rng.choice(self.validation_indices, n, replace=False))

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        return self._labels()[np.asarray(indices)]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Factors of n observations drawn uniformly: the data's own joint distribution."""
        return self._labels()[rng.integers(0, len(self), n)]

    def observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """For each factor vector, an observation that has it (random among equals with `rng`)."""
        keys, sorted_keys, order = self._keys(factors), *self._key_index()
        low = np.searchsorted(sorted_keys, keys, side="left")
        high = np.searchsorted(sorted_keys, keys, side="right")
        if np.any(high == low):
            missing = np.asarray(factors)[np.argmax(high == low)]
            raise UntwineError(f"no observation has the factor values {missing.tolist()}")
        offset = 0 if rng is None else (rng.random(len(keys)) * (high - low)).astype(np.int64)
        return self.observations(order[low + offset])

    def resample_sharing(
        self, factors: np.ndarray, fixed: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Row i becomes the factors of a random observation sharing factor fixed[i]'s value."""
        labels, factors, fixed = self._labels(), np.asarray(factors), np.asarray(fixed)
        items = np.empty(len(factors), np.int64)
        for j in np.unique(fixed):
            rows = np.flatnonzero(fixed == j)
            order, starts, counts = self._by_value(j)
            values = factors[rows, j]
            offset = (rng.random(len(rows)) * counts[values]).astype(np.int64)
            items[rows] = order[starts[values] + offset]
        return labels[items]

    def _labels(self) -> np.ndarray:
        if self._factors is None:
            raise UntwineError(
                "this dataset has no factors; give them (an array's `factors` key, a table's "
                "--factors) to use the supervised metrics"
            )
        return self._factors

    def _by_value(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observations sorted by factor j, where each value's run starts, and its length.

        Cached: the metrics ask for it once per chunk of points.
        """
        if not hasattr(self, "_grouped"):
            self._grouped = {}
        if j not in self._grouped:
            column = self._labels()[:, j]
            counts = np.bincount(column, minlength=self.factor_sizes[j])
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            self._grouped[j] = (np.argsort(column, kind="stable"), starts, counts)
        return self._grouped[j]

    def _keys(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)

    def _key_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Every observation's factor key, sorted, and the order that sorts them (cached)."""
        if not hasattr(self, "_sorted"):
            keys = self._keys(self._labels())
            order = np.argsort(keys, kind="stable")
            self._sorted = (keys[order], order)
        return self._sorted


def discretise(
    values: list[np.ndarray], names: tuple[str, ...], bins: int
) -> tuple[np.ndarray, list[str]]:
    """Factor class indices (n, k) from raw columns, and a note per factor on how.

    A column of text, or with at most `bins` distinct values, is categorical (sorted values ->
    0, 1, ...); any other numeric column is cut into `bins` equal-count (quantile) bins.
    """
    if bins < 2:
        raise UntwineError(f"data.bins must be at least 2, got {bins}")
    columns, notes = [], []
    for name, column in zip(names, values, strict=True):
        distinct = np.unique(column)
        if column.dtype.kind not in "biuf" or len(distinct) <= bins:
            columns.append(np.searchsorted(distinct, column))
            notes.append(f"factor {name}: {len(distinct)} classes")
            continue
        edges = np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1])
        classes = np.unique(np.searchsorted(edges, column, side="right"), return_inverse=True)[1]
        columns.append(classes.reshape(-1))
        notes.append(
            f"factor {name}: continuous ({len(distinct)} values), discretised into "
            f"{classes.max() + 1} quantile bins"
        )
    return np.stack(columns, axis=1).astype(np.int64), notes


@DATASETS.register("folder")
class FolderDataset(UserDataset):
    """A folder of images (png, jpg, ...; subfolders included), centre-cropped and resized.

    Every image is cropped to a centred square, resized to `size` x `size`, and converted to
    RGB, or to grey when every image is grey (`color`); unreadable files are skipped and named.
    The decoded images are cached (uint8) under the data root until a file changes.
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
        images, skipped = _cached_folder(folder, files, size, color)
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
        self._setup(images, "nhwc", None, (), validation, split_seed)

    @classmethod
    def suggested_model_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return {} if options.get("size", 64) == 64 else {"arch": "mlp"}


def _cached_folder(
    folder: Path, files: list[Path], size: int, color: str
) -> tuple[np.ndarray, list[str]]:
    """Decoded images of `files` (n, size, size, C) and the skipped ones, via a cache file."""
    digest = hashlib.sha1(f"{folder.resolve()}|{size}|{color}".encode())
    for file in files:
        stat = file.stat()
        digest.update(f"|{file.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    cache = data_root() / "cache" / f"folder-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return stored["images"], stored["skipped"].tolist()
    images, skipped = _read_images(folder, files, size, color)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, images=images, skipped=np.array(skipped, dtype=str))
    os.replace(tmp, cache)
    return images, skipped


def _read_images(
    folder: Path, files: list[Path], size: int, color: str
) -> tuple[np.ndarray, list[str]]:
    """Decode, crop and resize each file; unreadable ones are listed as 'name (reason)'."""
    decoded, skipped = [], []
    for file in files:
        try:
            with Image.open(file) as image:
                image.load()
                decoded.append(_square(image, size))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
            reason = str(e).split(" (")[0] if str(e) else type(e).__name__
            skipped.append(f"{file.relative_to(folder)} ({reason})")
    if color == "auto":
        grey = all(image.mode in ("1", "L", "I", "I;16", "F") for image in decoded)
        color = "grey" if grey else "rgb"
    mode, channels = ("L", 1) if color == "grey" else ("RGB", 3)
    images = np.zeros((len(decoded), size, size, channels), np.uint8)
    for i, image in enumerate(decoded):
        images[i] = np.asarray(_to_mode(image, mode)).reshape(size, size, channels)
    return images, skipped


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


@DATASETS.register("array")
class ArrayDataset(UserDataset):
    """An array file: images (N,H,W), (N,H,W,C) or (N,C,H,W), or rows (N,F); .npy or .npz.

    In an .npz, the observations are `key` (default: `images`, or the only other array) and
    factors come from `factors` (N, k), named by `factor_names` if present. uint8 images are
    scaled to [0, 1]; any other dtype is used as float32, as it is. A .npy is memory-mapped.
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
        data, factors, names = _read_array_file(file, key)
        layout = _layout(data.shape, file)
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
        self._setup(data, layout, labels, names, validation, split_seed)

    @classmethod
    def suggested_model_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        shape = _array_shape(Path(options["path"]).expanduser(), options.get("key"))
        if shape is None:
            return {}
        if len(shape) == 2:
            return {"arch": "mlp", "likelihood": "gaussian", "output": "linear"}
        spatial = shape[1:3] if _layout(shape, None) == "nhwc" else shape[2:4]
        return {} if tuple(spatial) == (64, 64) else {"arch": "mlp"}


def _read_array_file(
    file: Path, key: str | None
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Observations, factors (or None) and factor names from a .npy or .npz file."""
    if not file.is_file():
        raise UntwineError(f"array file {file} does not exist")
    if file.suffix not in (".npy", ".npz"):
        raise UntwineError(f"array file {file} must end in .npy or .npz")
    try:
        if file.suffix == ".npy":
            if key is not None:
                raise UntwineError("data.key only applies to .npz files")
            return np.load(file, mmap_mode="r", allow_pickle=False), None, ()
        with np.load(file, allow_pickle=False) as archive:
            key = _observation_key(archive.files, key, file)
            factors = archive["factors"] if "factors" in archive.files else None
            names = archive["factor_names"] if "factor_names" in archive.files else ()
            return archive[key], factors, tuple(str(n) for n in np.ravel(names))
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, UntwineError):
            raise
        raise UntwineError(f"cannot read {file} as {file.suffix[1:]}: {error}") from None


def _observation_key(keys: list[str], key: str | None, file: Path) -> str:
    """Which array of an .npz holds the observations."""
    others = [k for k in keys if k not in ("factors", "factor_names")]
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


@DATASETS.register("table")
class TableDataset(UserDataset):
    """A CSV table with a header: feature columns standardised, factor columns optional.

    Features are `columns` (default: every column not a factor), standardised with the
    training split's mean and standard deviation (`feature_mean`, `feature_std`). `factors`
    names the factor columns (text or numbers; continuous ones cut into `bins` quantile bins).
    The MLP and a Gaussian likelihood are the defaults for tables.
    """

    @staticmethod
    def example_options(workdir: Path) -> dict[str, Any]:
        """A 40-row table with two feature columns and two factor columns, for tests."""
        rng = np.random.default_rng(0)
        colours, sizes = rng.choice(["red", "blue"], 40), rng.integers(1, 4, 40)
        lines = ["x,y,colour,size"] + [
            f"{rng.normal():.3f},{rng.normal():.3f},{colour},{size}"
            for colour, size in zip(colours, sizes, strict=True)
        ]
        (workdir / "table.csv").write_text("\n".join(lines) + "\n")
        return {"path": str(workdir / "table.csv"), "factors": ("colour", "size")}

    def __init__(
        self,
        path: str,
        factors: tuple[str, ...] = (),
        columns: tuple[str, ...] = (),
        bins: int = 20,
        validation: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        self.notes = []
        file = Path(path).expanduser()
        header, rows = _read_csv(file)
        for name in (*factors, *columns):
            if name not in header:
                raise UntwineError(f"{file} has no column {name!r}; it has {', '.join(header)}")
        features = tuple(columns) or tuple(c for c in header if c not in factors)
        if not features:
            raise UntwineError(f"{file}: no feature columns left once the factors are taken out")
        values = np.array(
            [
                [_number(row[header.index(c)], c, i, file) for c in features]
                for i, row in enumerate(rows)
            ],
            dtype=np.float64,
        ).reshape(len(rows), len(features))
        labels = None
        if factors:
            raw = [_column([row[header.index(c)] for row in rows]) for c in factors]
            labels, notes = discretise(raw, tuple(factors), bins)
            self.notes.extend(notes)
        self.feature_names = features
        self._setup(values, "rows", labels, tuple(factors), validation, split_seed)
        train = values[self.training_indices]
        self.feature_mean = train.mean(axis=0)
        std = train.std(axis=0)
        self.feature_std = np.where(std > 0, std, 1.0)  # a constant column stays 0
        self._data = ((values - self.feature_mean) / self.feature_std).astype(np.float32)
        self.notes.append(f"{len(features)} feature columns, standardised: {', '.join(features)}")

    @classmethod
    def suggested_model_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return {"arch": "mlp", "likelihood": "gaussian", "output": "linear"}


def _read_csv(file: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file (comma, semicolon or tab separated)."""
    if not file.is_file():
        raise UntwineError(f"table {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UntwineError(f"cannot read {file} as a UTF-8 CSV table: {error}") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    lines = [row for row in csv.reader(text.splitlines(), dialect) if row]
    if len(lines) < 3:
        raise UntwineError(f"{file} needs a header and at least two rows, got {len(lines)} lines")
    header = [name.strip() for name in lines[0]]
    for number, row in enumerate(lines[1:], start=2):
        if len(row) != len(header):
            raise UntwineError(
                f"{file} line {number} has {len(row)} fields, the header {len(header)}"
            )
    return header, lines[1:]


def _number(text: str, column: str, row: int, file: Path) -> float:
    """A feature value as a float, or an error naming the cell."""
    try:
        value = float(text)
    except ValueError:
        what = "is empty" if not text.strip() else f"holds {text!r}, not a number"
        raise UntwineError(
            f"{file} column {column!r} line {row + 2} {what}; feature columns must be numeric "
            "(list text columns as factors, or pick features with data.columns)"
        ) from None
    if not np.isfinite(value):
        raise UntwineError(f"{file} column {column!r} line {row + 2} holds {text!r}")
    return value


def _column(texts: list[str]) -> np.ndarray:
    """A factor column as numbers when every cell is one, else as text."""
    try:
        return np.array([float(t) for t in texts])
    except ValueError:
        return np.array([t.strip() for t in texts])
