"""Traversal figures: layout, ordering by KL, and the values traversed."""

from __future__ import annotations

import numpy as np
import torch

from untwine.data import load_dataset
from untwine.models import create_model
from untwine.viz import kl_per_dim, traversal_grid
from untwine.viz.grid import GAP, LABEL_WIDTH
from untwine.viz.traversal import traversal_cells


def _model_with_known_kl():
    """A model whose encoder biases give latent 2 the largest KL and latent 0 the next."""
    torch.manual_seed(0)
    model = create_model("betavae", observation_shape=(1, 64, 64), latent_dim=3)
    head = model.encoder.net[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([1.0, 0.0, 3.0, 0.0, 0.0, 0.0]))  # means, then log-variances
    return model


def test_kl_per_dim_is_the_average_kl_of_each_latent():
    kl = kl_per_dim(_model_with_known_kl(), load_dataset("dsprites"), n=64)
    np.testing.assert_allclose(kl, [0.5, 0.0, 4.5], atol=1e-6)  # 0.5 * mu^2 with unit variance


def test_rows_follow_kl_and_each_row_moves_only_its_latent():
    model, dataset = _model_with_known_kl(), load_dataset("dsprites")
    cells, order, _, measure = traversal_cells(model, dataset, n_values=5)
    assert measure == "KL"
    assert cells.shape == (3, 6, 1, 64, 64) and list(order) == [2, 0, 1]
    inputs = cells[:, 0]
    assert (inputs == inputs[0]).all() and inputs.max() == 255  # the same real image, each row
    for row, dim in zip(cells, order, strict=True):
        z = torch.tensor([1.0, 0.0, 3.0]).repeat(5, 1)
        z[:, dim] = torch.linspace(-2.5, 2.5, 5)
        expected = model.mean_image(z).detach().mul(255).round().byte().numpy()
        np.testing.assert_array_equal(row[1:], expected)


def test_grid_image_has_a_row_per_latent_and_a_column_per_value_plus_the_input():
    image = traversal_grid(_model_with_known_kl(), load_dataset("dsprites"), n_values=5)
    label_width = max(LABEL_WIDTH, 8 + 6 * len("z2  KL 4.50"))  # 6 px a letter, at least 72
    assert image.size == (label_width + 6 * (64 + GAP) + GAP, 3 * (64 + GAP) + GAP)
