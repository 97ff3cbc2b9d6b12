"""Latent traversals: one row per latent (most informative first), one column per value."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from untwine import runs
from untwine.data import Dataset, GroundTruthDataset, to_tensor
from untwine.files import atomic_write
from untwine.losses import kl_normal
from untwine.metrics import discrete_entropy
from untwine.models import Autoencoder, Model, QuantizedAE, VAEBase
from untwine.viz.charts import COLLAPSED_KL, new_figure, render
from untwine.viz.grid import compose, save_png
from untwine.viz.knobs import Knob, factor_latent_matrix, knob_names

TRAVERSAL = "traversal.png"  # RUN/figures/TRAVERSAL: the grid every traversal writes


def _random_batches(
    model: Model, dataset: Dataset, n: int, seed: int, batch_size: int
) -> Iterator[torch.Tensor]:
    """`n` random images drawn with `seed`, in batches on the model's device."""
    device = next(model.parameters()).device
    indices = np.random.default_rng(seed).integers(0, len(dataset), n)
    for start in range(0, n, batch_size):
        yield to_tensor(dataset.observations(indices[start : start + batch_size]), device)


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
    total = sum(
        kl_normal(*model.encode(x)).sum(0)
        for x in _random_batches(model, dataset, n, seed, batch_size)
    )
    return (total / n).cpu().numpy()


@torch.no_grad()
def code_entropy(
    model: QuantizedAE,
    dataset: Dataset,
    *,
    n: int = 512,
    seed: int = 0,
    batch_size: int = 128,
) -> np.ndarray:
    """Entropy of each quantised latent's values over `n` random images, nats, (D,)."""
    codes = [
        model.quantize(model.encode(x))[1].cpu().numpy()
        for x in _random_batches(model, dataset, n, seed, batch_size)
    ]
    return discrete_entropy(np.concatenate(codes))


def latent_information(
    model: Autoencoder, dataset: Dataset, *, n: int = 512, seed: int = 0
) -> tuple[np.ndarray, str]:
    """What each latent says about the input, nats (D,), and the measure's name: a VAE's
    average KL to the prior ("KL", a bound on I(x; z_d)); a quantised code's entropy ("H",
    which for a deterministic code is I(x; z_d) itself)."""
    if isinstance(model, QuantizedAE):
        return code_entropy(model, dataset, n=n, seed=seed), "H"
    return kl_per_dim(model, dataset, n=n, seed=seed), "KL"


@torch.no_grad()
def traversal_cells(
    model: Autoencoder,
    dataset: Dataset,
    *,
    seed: int = 0,
    n_values: int = 11,
    limit: float = 2.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Traversal images of one real input, uint8 (D, 1 + V, C, H, W), with row order, each
    latent's information and its measure's name (`latent_information`).

    Column 0 is the input; then z_d runs through V values while every other latent keeps the
    input's code: `n_values` from -limit to limit, or a quantised latent's allowed values.
    Rows are latents, most informative first.
    """
    model.eval()
    info, measure = latent_information(model, dataset, seed=seed)
    order = np.argsort(-info, kind="stable")
    x = _inputs(model, dataset, seed, 1)
    sweeps = _sweeps(model, x, order, n_values, limit)[:, 0]  # (D, V, C, H, W)
    cells = torch.cat([x[None].expand(len(order), -1, -1, -1, -1), sweeps], dim=1)
    return _bytes(cells), order, info, measure


def _inputs(model: Model, dataset: Dataset, seed: int, n: int) -> torch.Tensor:
    """n real inputs drawn with `seed` (the first is always the same for a seed), (n, C, H, W)."""
    device = next(model.parameters()).device
    index = np.random.default_rng(seed).integers(len(dataset), size=n)
    return to_tensor(dataset.observations(index), device)


def traversal_values(
    model: Autoencoder, n_values: int, limit: float, device: torch.device
) -> torch.Tensor:
    """The values each latent is stepped through, (D, V): a quantised latent's own allowed
    values, else `n_values` evenly from -limit to limit."""
    if isinstance(model, QuantizedAE):
        return model.latent_values().detach()
    return torch.linspace(-limit, limit, n_values, device=device).repeat(model.latent_dim, 1)


def _sweeps(
    model: Autoencoder, x: torch.Tensor, order: np.ndarray, n_values: int, limit: float
) -> torch.Tensor:
    """Decoded sweeps of each latent in `order` from each input: (D, inputs, V, C, H, W)."""
    base = model.representation(x)  # (S, D)
    values = traversal_values(model, n_values, limit, x.device)  # (D, V)
    steps = values.shape[1]
    rows = []
    for dim in order:
        z = base[:, None, :].repeat(1, steps, 1)  # (S, V, D)
        z[:, :, dim] = values[dim]
        rows.append(model.mean_image(z.flatten(0, 1)).unflatten(0, (len(x), steps)))
    return torch.stack(rows)


def _bytes(images: torch.Tensor) -> np.ndarray:
    return images.clamp(0, 1).mul(255).round().byte().cpu().numpy()


def traversal_grid(
    model: Autoencoder,
    dataset: Dataset,
    *,
    seed: int = 0,
    n_values: int = 11,
    limit: float = 2.5,
    knobs: list[Knob] | None = None,
) -> Image.Image:
    """The traversal figure: `traversal_cells` laid out, each row labelled with latent and its
    information (KL or H).

    Collapsed latents (under 0.1 nats) are dimmed. Given `knobs` (latent -> factor names), each
    label names the factor, and on a ground-truth dataset the row continues, after a gap, with
    that factor swept through its values from the same input: what the latent should look like.
    """
    cells, order, info, measure = traversal_cells(
        model, dataset, seed=seed, n_values=n_values, limit=limit
    )
    labels = [f"z{d}  {measure} {info[d]:.2f}" for d in order]
    if knobs:
        labels = [
            f"{label}\n{knobs[d].factor or '-'} {knobs[d].score:.2f}"
            for label, d in zip(labels, order, strict=True)
        ]
        if isinstance(dataset, GroundTruthDataset):
            steps = cells.shape[1] - 1
            truth = _factor_sweeps(dataset, seed, [knobs[d].factor for d in order], steps)
            blank = np.zeros_like(cells[:, :1])
            cells = np.concatenate([cells, blank, truth], axis=1)
    return compose(cells, labels, muted=[bool(info[d] < COLLAPSED_KL) for d in order])


def _factor_sweeps(
    dataset: GroundTruthDataset, seed: int, factors: list[str | None], n_values: int
) -> np.ndarray:
    """Per row, the traversal input with the named factor stepped through its range.

    uint8 (rows, n_values, C, H, W); a row is blank where the name is None, and a factor with
    fewer than `n_values` values repeats some.
    """
    index = np.random.default_rng(seed).integers(len(dataset), size=1)
    base = dataset.index_to_factors(index)[0]
    rows = []
    for name in factors:
        if name is None:
            rows.append(np.zeros((n_values, *dataset.observation_shape), np.uint8))
            continue
        k = dataset.factor_names.index(name)
        sweep = np.repeat(base[None], n_values, axis=0)
        sweep[:, k] = np.round(np.linspace(0, dataset.factor_sizes[k] - 1, n_values)).astype(int)
        rows.append(dataset.observations_from_factors(sweep).transpose(0, 3, 1, 2))
    return np.stack(rows)


def traversal_gifs(
    model: Autoencoder,
    dataset: Dataset,
    *,
    seeds: int = 3,
    seed: int = 0,
    n_values: int = 11,
    limit: float = 2.5,
    frame_ms: int = 120,
) -> dict[str, bytes]:
    """Animated traversals as GIF bytes, by file name; each sweep runs there and back.

    `traversal.gif` has the latents in rows (as the PNG) and `seeds` inputs in columns;
    `traversal-z{d}.gif` shows one latent's inputs side by side.
    """
    model.eval()
    info, measure = latent_information(model, dataset, seed=seed)
    order = np.argsort(-info, kind="stable")
    sweeps = _bytes(_sweeps(model, _inputs(model, dataset, seed, seeds), order, n_values, limit))
    steps = sweeps.shape[2]
    frames = [*range(steps), *range(steps - 2, 0, -1)]  # there and back
    labels = [f"z{d}  {measure} {info[d]:.2f}" for d in order]
    muted = [bool(info[d] < COLLAPSED_KL) for d in order]
    gifs = {
        "traversal.gif": _gif(
            [compose(sweeps[:, :, v], labels, muted=muted) for v in frames], frame_ms
        )
    }
    for row, dim in enumerate(order):
        pictures = [compose(sweeps[row : row + 1, :, v], labels[row : row + 1]) for v in frames]
        gifs[f"traversal-z{dim}.gif"] = _gif(pictures, frame_ms)
    return gifs


def _gif(frames: list[Image.Image], frame_ms: int) -> bytes:
    """An endlessly looping GIF of the frames."""
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
    )
    return buffer.getvalue()


@torch.no_grad()
def row_traversal_figure(
    model: Autoencoder, dataset: Dataset, *, seed: int = 0, n_values: int = 11, limit: float = 2.5
) -> Image.Image:
    """Traversals of a table: one panel per latent (most informative first), each feature's
    decoded value against z_d."""
    model.eval()
    device = next(model.parameters()).device
    info, measure = latent_information(model, dataset, seed=seed)
    order = np.argsort(-info, kind="stable")
    index = np.random.default_rng(seed).integers(len(dataset), size=1)
    base = model.representation(to_tensor(dataset.observations(index), device))[0]
    values = traversal_values(model, n_values, limit, device)  # (D, V)
    names = dataset.feature_names or [f"x{i}" for i in range(dataset.observation_shape[0])]
    columns = min(len(order), 4)
    rows = -(-len(order) // columns)
    figure = new_figure(3.2 * columns, 2.4 * rows)
    for panel, dim in enumerate(order):
        z = base.repeat(values.shape[1], 1)
        z[:, dim] = values[dim]
        decoded = model.mean_image(z).cpu().numpy()  # (V, F)
        axes = figure.add_subplot(rows, columns, panel + 1)
        for feature, name in enumerate(names):
            axes.plot(values[dim].cpu().numpy(), decoded[:, feature], label=name, marker=".")
        axes.set_title(f"z{dim}  {measure} {info[dim]:.2f}", fontsize=9)
        axes.set_xlabel(f"z{dim}", fontsize=8)
        axes.tick_params(labelsize=7)
    figure.axes[0].legend(fontsize=7, loc="best")
    return render(figure)


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

    An autoencoder (a VAE, a quantised one) on images gets the grid from one input, each latent
    named by the factor it captures (with that factor's own sweep beside it) when the data has
    factors, and the animated `traversal.gif` and `traversal-z{d}.gif`; on a table, a panel of
    feature curves per latent. InfoGAN gets its codes swept under several noise samples.
    """
    _, model, dataset = runs.open_run(run_dir, device)
    knobs = None
    images = len(dataset.observation_shape) == 3
    if dataset.factor_names and isinstance(model, Autoencoder) and images:
        matrix = factor_latent_matrix(model, dataset, n=3000, seed=seed)
        knobs = knob_names(matrix, dataset.factor_names)
    return write_traversals(model, dataset, runs.figures_dir(Path(run_dir)), seed=seed, knobs=knobs)


def write_traversals(
    model: Model,
    dataset: Dataset,
    figures: Path,
    *,
    seed: int = 0,
    knobs: list[Knob] | None = None,
) -> Path:
    """Write the traversal PNG (and an autoencoder's GIFs) into `figures`; returns its path."""
    figures.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "traverse_codes"):  # a generator with codes: no input image needed
        image = code_traversal_grid(model, seed=seed)
    elif len(dataset.observation_shape) == 1:
        image = row_traversal_figure(model, dataset, seed=seed)
    else:
        image = traversal_grid(model, dataset, seed=seed, knobs=knobs)
        for name, data in traversal_gifs(model, dataset, seed=seed).items():
            atomic_write(figures / name, data)
    return save_png(image, figures / TRAVERSAL)
