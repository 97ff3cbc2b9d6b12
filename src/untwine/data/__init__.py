"""Datasets: the ground-truth interface and every registered dataset."""

from untwine.data import (
    array,
    dsprites,
    dsprites_variants,
    folder,
    official,
    shapes3d,
    table,
    user,
)
from untwine.data.base import (
    DATASETS,
    Dataset,
    GroundTruthDataset,
    data_root,
    load_dataset,
    to_tensor,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "GroundTruthDataset",
    "array",
    "data_root",
    "dsprites",
    "dsprites_variants",
    "folder",
    "load_dataset",
    "official",
    "shapes3d",
    "table",
    "to_tensor",
    "user",
]
