"""Which factor each latent turns: the factor x latent matrix, and a name for every knob."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from untwine.data import Dataset
from untwine.evaluate import representation_function
from untwine.metrics import normalized_mutual_info
from untwine.metrics._sampling import sample_codes
from untwine.models import Model
from untwine.viz.charts import new_figure, render

UNUSED = 0.05  # below this share of any factor's entropy, a latent is named "-"


@dataclass(frozen=True)
class Knob:
    """What one latent captures best: `factor` (or None) and how cleanly (normalised MI)."""

    latent: int
    factor: str | None
    score: float

    def __str__(self) -> str:
        name = self.factor if self.factor is not None else "-"
        return f"latent {self.latent} = {name}, {self.score:.2f}"


def factor_latent_matrix(
    model: Model, dataset: Dataset, *, n: int = 5000, seed: int = 0
) -> np.ndarray:
    """Normalised mutual information I(z_i; v_j) / H(v_j) over n random draws, (latents, factors).

    The estimate MIG uses: posterior means histogram-discretised into 20 bins.
    """
    encode = representation_function(model)
    codes, factors = sample_codes(dataset, encode, n, np.random.default_rng(seed))
    return normalized_mutual_info(codes, factors)


def knob_names(matrix: np.ndarray, factor_names: tuple[str, ...]) -> list[Knob]:
    """Each latent's best factor and its normalised MI; `-` when it holds almost none of any."""
    knobs = []
    for latent, row in enumerate(matrix):
        best = int(np.argmax(row))
        factor = factor_names[best] if row[best] >= UNUSED else None
        knobs.append(Knob(latent, factor, float(row[best])))
    return knobs


def knob_matrix_figure(
    matrix: np.ndarray, factor_names: tuple[str, ...], order: np.ndarray | None = None
) -> Image.Image:
    """The matrix as a heatmap: a row per latent (in `order`, e.g. by KL) labelled by its knob."""
    order = np.arange(len(matrix)) if order is None else np.asarray(order)
    knobs = knob_names(matrix, factor_names)
    shown = matrix[order]
    size = (2.4 + 0.9 * len(factor_names), 1.4 + 0.32 * len(order))
    figure = new_figure(*size)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shown, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(factor_names)), factor_names, rotation=30, ha="right", fontsize=8)
    axes.set_yticks(
        range(len(order)), [f"z{i} {knobs[i].factor or '-'}" for i in order], fontsize=8
    )
    for r, row in enumerate(shown):
        for c, value in enumerate(row):
            axes.text(
                c,
                r,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if value > 0.6 else "white",
            )
    axes.set_title("normalised mutual information I(z; factor) / H(factor)", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.05)
    return render(figure)
