"""A CSV table: feature columns standardised, factor columns optional."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from untwine.data.base import DATASETS
from untwine.data.user import UserDataset, discretise
from untwine.errors import UntwineError


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
