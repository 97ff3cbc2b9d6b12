"""Figures: each a function returning an image; `untwine.report` writes them into a run."""

from untwine.viz.charts import information_bars, training_curves
from untwine.viz.grid import compose, save_png
from untwine.viz.knobs import Knob, factor_latent_matrix, knob_matrix_figure, knob_names
from untwine.viz.samples import (
    dataset_head,
    dataset_pairs,
    dataset_samples,
    model_sample_rows,
    model_samples,
    reconstructions,
)
from untwine.viz.traversal import (
    code_entropy,
    code_traversal_grid,
    kl_per_dim,
    latent_information,
    row_traversal_figure,
    traversal_gifs,
    traversal_grid,
    traverse,
)

__all__ = [
    "Knob",
    "code_entropy",
    "code_traversal_grid",
    "compose",
    "dataset_head",
    "dataset_pairs",
    "dataset_samples",
    "factor_latent_matrix",
    "information_bars",
    "kl_per_dim",
    "knob_matrix_figure",
    "knob_names",
    "latent_information",
    "model_sample_rows",
    "model_samples",
    "reconstructions",
    "row_traversal_figure",
    "save_png",
    "training_curves",
    "traversal_gifs",
    "traversal_grid",
    "traverse",
]
