"""Latent traversals: one row per latent (highest KL first), one column per value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from untwine import runs
from untwine.data import Dataset, load_dataset, to_tensor
from untwine.losses import kl_normal
from untwine.models import Model, VAEBase
from untwine.viz.grid import compose, save_png


@torch.no_grad()
def kl_per_dim(
    model: VAEBase,
    dataset: Dataset,
    *,
    n: int = 512,
    seed: int = 0,
    batch_size: int = 128,
) -> np.ndarray:
    """Average KL of each latent to the prior over `n` random images, (D,)."""
    device = next(model.parameters()).device
    indices = np.random.default_rng(seed).integers(0, len(dataset), n)
    total = torch.zeros(model.latent_dim, device=device)
    for start in range(0, n, batch_size):
        x = to_tensor(dataset.observations(indices[start : start + batch_size]), device)
        mu, logvar = model.encode(x)
        total += kl_normal(mu, logvar).sum(0)
    return (total / n).cpu().numpy()


@torch.no_grad()
def traversal_cells(
    model: VAEBase,
    dataset: Dataset,
    *,
    seed: int = 0,
    n_values: int = 11,
    limit: float = 2.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Traversal images of one real input, uint8 (D, 1 + n_values, C, H, W), with row order and KL.

    Column 0 is the input; then z_d runs from -limit to limit while every other latent stays at
    the input's posterior mean. Rows are latents sorted by average KL, most informative first.
    """
    model.eval()
    device = next(model.parameters()).device
    kl = kl_per_dim(model, dataset, seed=seed)
    order = np.argsort(-kl, kind="stable")
    index = np.random.default_rng(seed).integers(len(dataset), size=1)
    x = to_tensor(dataset.observations(index), device)
    base = model.representation(x)[0]  # (D,)
    values = torch.linspace(-limit, limit, n_values, device=device)
    rows = []
    for dim in order:
        z = base.repeat(n_values, 1)  # (V, D)
        z[:, dim] = values
        rows.append(torch.cat([x, model.mean_image(z)]))  # (1 + V, C, H, W)
    cells = torch.stack(rows).clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return cells, order, kl


def traversal_grid(
    model: VAEBase,
    dataset: Dataset,
    *,
    seed: int = 0,
    n_values: int = 11,
    limit: float = 2.5,
) -> Image.Image:
    """The traversal figure: `traversal_cells` laid out, each row labelled with latent and KL."""
    cells, order, kl = traversal_cells(model, dataset, seed=seed, n_values=n_values, limit=limit)
    return compose(cells, [f"z{d}  KL {kl[d]:.2f}" for d in order])


@torch.no_grad()
def row_traversal_figure(
    model: VAEBase, dataset: Dataset, *, seed: int = 0, n_values: int = 11, limit: float = 2.5
) -> Image.Image:
    """Traversals of a table: one panel per latent (by KL), each feature's decoded value vs z_d."""
    model.eval()
    device = next(model.parameters()).device
    kl = kl_per_dim(model, dataset, seed=seed)
    order = np.argsort(-kl, kind="stable")
    index = np.random.default_rng(seed).integers(len(dataset), size=1)
    base = model.representation(to_tensor(dataset.observations(index), device))[0]
    values = torch.linspace(-limit, limit, n_values, device=device)
    names = dataset.feature_names or [f"x{i}" for i in range(dataset.observation_shape[0])]
    columns = min(len(order), 4)
    rows = -(-len(order) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows), dpi=100, layout="constrained")
    for panel, dim in enumerate(order):
        z = base.repeat(n_values, 1)
        z[:, dim] = values
        decoded = model.mean_image(z).cpu().numpy()  # (V, F)
        axes = figure.add_subplot(rows, columns, panel + 1)
        for feature, name in enumerate(names):
            axes.plot(values.cpu().numpy(), decoded[:, feature], label=name)
        axes.set_title(f"z{dim}  KL {kl[dim]:.2f}", fontsize=9)
        axes.set_xlabel(f"z{dim}", fontsize=8)
        axes.tick_params(labelsize=7)
    figure.axes[0].legend(fontsize=7, loc="best")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])


@torch.no_grad()
def code_traversal_grid(
    model: Model, *, seed: int = 0, n_values: int = 11, n_noise: int = 3
) -> Image.Image:
    """A generator's traversals: per code, one row per noise sample (`c2 n1`), code swept.

    Each noise sample also fixes the other codes (drawn from their prior, seeded), so a code
    that means one thing moves the same factor in each of its rows.
    """
    model.eval()
    device = next(model.parameters()).device
    inputs = model.sample_inputs(n_noise, torch.Generator(device=device).manual_seed(seed))
    rows, labels = [], []
    for sample in range(n_noise):
        one = [part[sample : sample + 1] for part in inputs]
        for label, images in model.traverse_codes(*one, n_values=n_values):
            rows.append(images)
            labels.append(f"{label} n{sample}")
    order = sorted(range(len(rows)), key=lambda r: (labels[r].split()[0], r))  # code by code
    width = max(len(r) for r in rows)
    cells = torch.zeros(len(rows), width, *rows[0].shape[1:], device=device)
    for out, r in enumerate(order):
        cells[out, : len(rows[r])] = rows[r]
    cells = cells.clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return compose(cells, [labels[r] for r in order])


def traverse(run_dir: str | Path, *, seed: int = 0, device: str = "cpu") -> Path:
    """Redraw `RUN/figures/traversal.png` from the run's weights and dataset; returns its path.

    A VAE gets the grid of decoded images from one input (table rows: a panel of feature
    curves per latent); InfoGAN gets its codes swept under several noise samples.
    """
    model = runs.load_run(run_dir, device=device)
    config = runs.read_config(run_dir)
    dataset = load_dataset(config.data.name, **config.data.options)
    if hasattr(model, "traverse_codes"):  # a generator with codes: no input image needed
        image = code_traversal_grid(model, seed=seed)
    elif len(dataset.observation_shape) == 1:
        image = row_traversal_figure(model, dataset, seed=seed)
    else:
        image = traversal_grid(model, dataset, seed=seed)
    return save_png(image, Path(run_dir) / runs.FIGURES / "traversal.png")
