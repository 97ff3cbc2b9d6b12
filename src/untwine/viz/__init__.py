"""Figures: traversals and dataset samples (more figures and the HTML report build on these)."""

from untwine.viz.grid import compose, save_png
from untwine.viz.samples import dataset_head, dataset_samples, model_samples
from untwine.viz.traversal import kl_per_dim, traversal_grid, traverse

__all__ = [
    "compose",
    "dataset_head",
    "dataset_samples",
    "kl_per_dim",
    "model_samples",
    "save_png",
    "traversal_grid",
    "traverse",
]
