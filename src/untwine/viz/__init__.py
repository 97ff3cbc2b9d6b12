"""Figures: traversals (more figures and the HTML report build on these)."""

from untwine.viz.traversal import kl_per_dim, save_png, traversal_grid, traverse

__all__ = ["kl_per_dim", "save_png", "traversal_grid", "traverse"]
