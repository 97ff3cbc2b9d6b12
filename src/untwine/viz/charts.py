"""Charts drawn with matplotlib: per-dimension KL, and training curves from log.jsonl."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from untwine.metrics import headline_keys, references

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLLAPSED_KL = 0.1  # nats per observation: below this a latent is treated as collapsed


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure (imported here, on first use: it costs every command half a second)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def render(figure: Figure) -> Image.Image:
    """A matplotlib figure as an RGB image (no window, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def information_bars(info: np.ndarray, measure: str = "KL") -> Image.Image:
    """What each latent carries (a VAE's average KL, a quantised code's entropy H), as bars,
    largest first; collapsed latents in grey."""
    order = np.argsort(-info, kind="stable")
    figure = new_figure(1.5 + 0.35 * len(info), 2.6)
    axes = figure.add_subplot(1, 1, 1)
    colours = ["#4c72b0" if info[d] >= COLLAPSED_KL else "#b0b0b0" for d in order]
    axes.bar(range(len(info)), info[order], color=colours)
    axes.set_xticks(range(len(info)), [f"z{d}" for d in order], fontsize=8)
    axes.axhline(COLLAPSED_KL, color="#c44e52", linewidth=0.8, linestyle="--")
    axes.set_ylabel(f"{measure} (nats)", fontsize=8)
    collapsed = int((info < COLLAPSED_KL).sum())
    axes.set_title(
        f"{measure} per latent: {len(info) - collapsed} active, {collapsed} collapsed "
        f"(< {COLLAPSED_KL})",
        fontsize=9,
    )
    axes.tick_params(labelsize=7)
    return render(figure)


LOSS_TERMS_SKIPPED = ("kl_per_dim", "images_per_s", "active_units", "step")


def training_curves(records: list[dict[str, Any]]) -> Image.Image:
    """Loss terms, KL per latent and any tracked metrics against the step, from log records."""
    losses = [r for r in records if "eval" not in r]
    evals = [r for r in records if "eval" in r]
    terms = [
        key
        for key, value in (losses[-1] if losses else {}).items()
        if key not in LOSS_TERMS_SKIPPED and isinstance(value, float)
    ]
    has_kl = bool(losses) and "kl_per_dim" in losses[-1]
    panels = len(terms) + has_kl + bool(evals)
    columns = min(panels, 3) or 1
    rows = -(-panels // columns) or 1
    figure = new_figure(3.6 * columns, 2.4 * rows)
    steps = [r["step"] for r in losses]
    measured = references()  # loss term -> the metric that measures it independently
    panel = 0
    for term in terms:
        panel += 1
        axes = figure.add_subplot(rows, columns, panel)
        axes.plot(steps, [r.get(term, np.nan) for r in losses], linewidth=1, label="model")
        axes.set_title(term, fontsize=9)
        measured_by = measured.get(term)
        reference = [r for r in evals if measured_by in r["eval"]]
        if reference:
            steps_measured = [r["step"] for r in reference]
            values = [r["eval"][measured_by] for r in reference]
            axes.plot(steps_measured, values, "o--", markersize=3, label=measured_by)
            axes.legend(fontsize=6)
    if has_kl:
        panel += 1
        axes = figure.add_subplot(rows, columns, panel)
        kl = np.array([r["kl_per_dim"] for r in losses])  # (records, D)
        for d in range(kl.shape[1]):
            axes.plot(steps, kl[:, d], linewidth=1, label=f"z{d}")
        axes.set_title("KL per latent", fontsize=9)
        axes.legend(fontsize=6, ncol=2)
    if evals:
        panel += 1
        axes = figure.add_subplot(rows, columns, panel)
        tracked = headline_keys()
        names = [k for k in evals[-1]["eval"] if k in tracked]
        for name in names:
            axes.plot(
                [r["step"] for r in evals],
                [r["eval"].get(name) for r in evals],
                marker="o",
                markersize=3,
                label=name,
            )
        axes.set_title("metrics during training", fontsize=9)
        axes.legend(fontsize=6)
    for axes in figure.axes:
        axes.tick_params(labelsize=7)
        axes.set_xlabel("step", fontsize=7)
    return render(figure)
