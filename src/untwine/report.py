"""The run report: every figure written into RUN/figures, and RUN/report.html that shows them.

The HTML page is one self-contained file (images embedded as data URIs, no scripts, no
network), so it opens offline and can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from untwine import runs
from untwine.data import Dataset
from untwine.files import atomic_write
from untwine.metrics import meanings, references
from untwine.models import Autoencoder, Model
from untwine.viz.charts import COLLAPSED_KL, information_bars, training_curves
from untwine.viz.grid import save_png
from untwine.viz.knobs import factor_latent_matrix, knob_matrix_figure, knob_names
from untwine.viz.samples import model_samples, reconstructions
from untwine.viz.traversal import latent_information, write_traversals

REPORT = "report.html"
KL_SPIKE = 5.0  # a logged KL this many times the medians of its neighbours is a spike
SEEN_SHARE = 0.5  # a model's estimate of a term under this share of the metric's sees too little
SEEN_FLOOR = 0.1  # a metric's reading below this is too small to judge a model's estimate by

HEALTH_MEANINGS = {  # what evaluate reads beside the metrics (theirs are registered)
    "active_units": "Latents whose mean varies across inputs (variance > 0.01).",
    "kl": "KL(q(z|x) || p(z)) per input, summed over latents, in nats.",
    "reconstruction": "Negative log-likelihood of an input given its latents, in nats.",
    "elbo": "Evidence lower bound per input: -(reconstruction + KL), in nats.",
    "entropy": "Quantised codes: entropy of each latent's values over inputs, summed, in nats.",
    "code_mse": "InfoGAN: squared error of Q's reading of the continuous codes on fresh samples.",
    "code_accuracy": "InfoGAN: accuracy of Q's reading of the categorical codes on fresh samples.",
}


def write_figures(run_dir: str | Path, *, seed: int = 0, device: str = "cpu") -> dict[str, Path]:
    """Every figure the run supports, written into RUN/figures; returns name -> path.

    traversal (PNG, GIFs), samples, training curves; for an autoencoder also reconstructions and
    what each latent carries (a VAE's KL, a quantised code's entropy); with ground-truth
    factors, the factor x latent matrix (and knobs.json naming each latent's factor, for the
    explorer and the report).
    """
    _, model, dataset = runs.open_run(run_dir, device)
    return _write_figures(Path(run_dir), model, dataset, seed)


def _write_figures(run_dir: Path, model: Model, dataset: Dataset, seed: int) -> dict[str, Path]:
    figures = runs.figures_dir(run_dir)
    images = len(dataset.observation_shape) == 3
    written: dict[str, Path] = {}
    knobs = None
    if dataset.factor_names:  # one estimate names the knobs for every figure
        matrix = factor_latent_matrix(model, dataset, n=3000, seed=seed)
        knobs = knob_names(matrix, dataset.factor_names)
    autoencoder = isinstance(model, Autoencoder)
    written["traversal"] = write_traversals(
        model, dataset, figures, seed=seed, knobs=knobs if autoencoder else None
    )
    if images:
        written["samples"] = save_png(model_samples(model, 32, seed=seed), figures / "samples.png")
    if autoencoder:
        info, measure = latent_information(model, dataset, seed=seed)
        name = "kl" if measure == "KL" else "entropy"
        written[name] = save_png(information_bars(info, measure), figures / f"{name}.png")
        if images:
            written["reconstructions"] = save_png(
                reconstructions(model, dataset, 8, seed=seed), figures / "reconstructions.png"
            )
    if knobs is not None:
        order = np.argsort(-info, kind="stable") if autoencoder else None
        written["knobs"] = save_png(
            knob_matrix_figure(matrix, dataset.factor_names, order), figures / "knobs.png"
        )
        text = json.dumps([vars(k) for k in knobs], indent=2) + "\n"
        atomic_write(figures / "knobs.json", text.encode())
        written["knobs.json"] = figures / "knobs.json"
    records = runs.read_log(run_dir)
    if records:
        written["curves"] = save_png(training_curves(records), figures / "curves.png")
    return written


def health_warnings(run_dir: str | Path) -> list[str]:
    """Model-health warnings read off the log and the scores: NaN stops, KL spikes, collapse."""
    run_dir = Path(run_dir)
    records = runs.read_log(run_dir)
    config = runs.read_config(run_dir)
    warnings = [
        f"training stopped at step {r['step']}: {', '.join(r['diverged'])} became NaN or "
        "infinite (the weights are from the last checkpoint before it)"
        for r in records
        if "diverged" in r
    ]
    steps = runs.trained_steps(run_dir)
    if steps < config.train.steps and not warnings:
        warnings.append(f"training is unfinished: step {steps} of {config.train.steps}")
    kls = [(r["step"], r["kl"]) for r in records if isinstance(r.get("kl"), float)]
    for i in range(3, len(kls) - 1):  # a spike stands above the records on both sides of it
        before = float(np.median([kl for _, kl in kls[max(i - 5, 0) : i]]))
        after = float(np.median([kl for _, kl in kls[i + 1 : i + 6]]))
        if kls[i][1] > KL_SPIKE * max(before, after, 1e-12):
            warnings.append(
                f"KL spike at step {kls[i][0]}: {kls[i][1]:.3g} nats, {kls[i][1] / before:.1f}x "
                "the records before it, and it fell back after"
            )
            break
    warnings.extend(_penalty_unseen(records))
    last_kl = next((r["kl_per_dim"] for r in reversed(records) if "kl_per_dim" in r), None)
    if last_kl is not None:
        collapsed = [f"z{d}" for d, kl in enumerate(last_kl) if kl < COLLAPSED_KL]
        if len(collapsed) == len(last_kl):
            warnings.append(
                "every latent has collapsed to the prior (KL < 0.1): posterior collapse"
            )
        elif collapsed:
            warnings.append(
                f"{len(collapsed)} of {len(last_kl)} latents collapsed to the prior "
                f"(KL < {COLLAPSED_KL}): {', '.join(collapsed)}"
            )
    return warnings


def _penalty_unseen(records: list[dict[str, Any]]) -> list[str]:
    """A loss term that a metric measures independently (a model's TC estimate, the critic's
    TC), both logged during training: warn when the model's is below half the metric's, since
    its penalty then sees too little."""
    warnings = []
    for term, metric in references().items():
        own = {r["step"]: r[term] for r in records if isinstance(r.get(term), float)}
        pairs = [
            (r["step"], own[r["step"]], r["eval"][metric])
            for r in records
            if metric in r.get("eval", {}) and r["step"] in own
        ]
        judged = [(step, mine, ref) for step, mine, ref in pairs if ref >= SEEN_FLOOR]
        low = [(step, mine, ref) for step, mine, ref in judged if mine < SEEN_SHARE * ref]
        if not low:
            continue
        step, mine, ref = low[-1]
        warnings.append(
            f"the model's own {term} estimate was below half of {metric}'s reading at "
            f"{len(low)} of {len(judged)} evaluations (last at step {step}: {mine:.3g} against "
            f"{ref:.3g}): its penalty sees less than its codes carry"
        )
    return warnings


def report(run_dir: str | Path, *, seed: int = 0, device: str = "cpu") -> Path:
    """Write the figures and RUN/report.html; returns the report's path."""
    run_dir = Path(run_dir)
    config, model, dataset = runs.open_run(run_dir, device)
    metrics = runs.read_metrics(run_dir)  # before writing anything: it may be damaged
    figures = _write_figures(run_dir, model, dataset, seed)
    knobs = json.loads(figures["knobs.json"].read_text()) if "knobs.json" in figures else None
    sections = [
        section("Health", _warnings_html(health_warnings(run_dir))),
        section("Metrics", _metrics_html(metrics, run_dir)),
        section("Latent traversals", _traversal_html(figures, knobs)),
        section("What each latent captures", _knobs_html(figures, knobs)),
        section("Reconstructions and samples", _images_html(figures, "reconstructions", "samples")),
        section("Information per latent", _images_html(figures, "kl", "entropy")),
        section("Training curves", _images_html(figures, "curves")),
        section("Data", _data_html(config, dataset)),
        section("Config", f"<pre>{html.escape(Path(run_dir / runs.CONFIG).read_text())}</pre>"),
    ]
    title = f"untwine report: {run_dir.name}"
    summary = (
        f"{html.escape(config.model.name)} on {html.escape(config.data.name)}, "
        f"step {runs.trained_steps(run_dir)} of {config.train.steps}, seed {config.train.seed}"
    )
    page = PAGE.format(
        title=html.escape(title), summary=summary, body="\n".join(s for s in sections if s)
    )
    path = run_dir / REPORT
    atomic_write(path, page.encode())
    return path


def section(title: str, body: str) -> str:
    """A titled section of a report page, anchored by its title; empty when `body` is."""
    slug = title.lower().split(" (")[0].replace(" ", "-")
    return f'<section id="{slug}"><h2>{html.escape(title)}</h2>\n{body}\n</section>' if body else ""


def embed_file(path: Path, alt: str, css_class: str = "") -> str:
    """An <img> whose source is the file itself, base64 in a data URI."""
    kind = "gif" if path.suffix == ".gif" else "png"
    return _img(
        f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}", alt, css_class
    )


def embed_image(image: Image.Image, alt: str = "") -> str:
    """An <img> of an in-memory image, PNG in a data URI."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return _img(f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}", alt, "")


def _img(source: str, alt: str, css_class: str) -> str:
    css = f' class="{css_class}"' if css_class else ""
    return f'<img{css} src="{source}" alt="{html.escape(alt)}">'


def _images_html(figures: dict[str, Path], *names: str) -> str:
    return "\n".join(f"<figure>{embed_file(figures[n], n)}</figure>" for n in names if n in figures)


def _warnings_html(warnings: list[str]) -> str:
    if not warnings:
        return '<p class="ok">No warnings: training finished, no NaN, no KL spike, no collapse.</p>'
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f'<ul class="warnings">{items}</ul>'


def _metrics_html(metrics: dict[str, Any] | None, run_dir: Path) -> str:
    if metrics is None:
        return (
            f"<p>No metrics yet: run <code>untwine evaluate {html.escape(str(run_dir))}</code>, "
            "then this report again.</p>"
        )
    rows = []
    for key, meaning in _meanings(metrics).items():
        if key in metrics:
            value = metrics[key]
            shown = f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))
            rows.append(
                f"<tr><td><code>{html.escape(key)}</code></td><td>{shown}</td>"
                f"<td>{html.escape(meaning)}</td></tr>"
            )
    budget = (
        f"step {metrics.get('step')}, {metrics.get('samples')} points, seed {metrics.get('seed')}"
    )
    return (
        f"<p>Measured at {html.escape(budget)} (metrics.json holds every key).</p>"
        f"<table><tr><th>metric</th><th>value</th><th>what it measures</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _meanings(metrics: dict[str, Any]) -> dict[str, str]:
    """Each registered metric's keys (with any per-factor terms), then model health's."""
    return {**meanings(metrics), **HEALTH_MEANINGS}


def _traversal_html(figures: dict[str, Path], knobs: list[dict] | None) -> str:
    note = (
        "<p>Each row moves one latent from its value for the input (first column) across the "
        "prior's range; rows are sorted by KL, collapsed latents dimmed."
        + (
            " Each row is labelled with the factor the latent captures best; the images after "
            "the gap move that factor itself, from the same input."
            if knobs
            else ""
        )
        + "</p>"
    )
    gif = figures["traversal"].parent / "traversal.gif"
    animated = f"<figure>{embed_file(gif, 'animated traversal')}</figure>" if gif.exists() else ""
    return note + _images_html(figures, "traversal") + animated


def _knobs_html(figures: dict[str, Path], knobs: list[dict] | None) -> str:
    if not knobs:
        return ""
    items = "".join(
        f"<li>latent {k['latent']} = {html.escape(k['factor'] or '-')}, {k['score']:.2f}</li>"
        for k in sorted(knobs, key=lambda k: -k["score"])
    )
    return (
        "<p>Normalised mutual information between each latent and each factor "
        "(I(z; factor) / H(factor), as MIG reads it): 1 means the latent determines the "
        "factor.</p>" + _images_html(figures, "knobs") + f'<ul class="knobs">{items}</ul>'
    )


def _data_html(config, dataset) -> str:
    factors = ", ".join(
        f"{n} ({s})" for n, s in zip(dataset.factor_names, dataset.factor_sizes, strict=True)
    )
    lines = [
        f"<p><code>{html.escape(config.data.name)}</code>: {len(dataset):,} observations of "
        f"shape {'x'.join(map(str, dataset.observation_shape))}; factors: "
        f"{html.escape(factors) or 'none'}.</p>"
    ]
    lines += [f"<p>{html.escape(note)}</p>" for note in dataset.notes]
    return "\n".join(lines)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
        padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }}
h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }}
img {{ max-width: 100%; height: auto; }}
img.thumb {{ max-width: 480px; }}
figure {{ margin: 0.8em 0; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}
.warnings li {{ color: #a33; }}
.ok {{ color: #363; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{summary}</p>
{body}
</body>
</html>
"""
