"""Datasets: the ground-truth interface and every registered dataset."""

from untwine.data import dsprites, dsprites_variants, official, shapes3d, user
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
    "data_root",
    "dsprites",
    "dsprites_variants",
    "load_dataset",
    "official",
    "shapes3d",
    "to_tensor",
    "user",
]
