"""A study's own report: STUDY/report.html, the reference study's analysis of its runs.

Read from `study.db` alone (the study file is not needed): every run's scores over seeds per
setting, how the metrics rank the runs alike or not, how much of each metric the objective,
its setting and the seed explain, reconstruction against disentanglement, the best run of each
model with its traversal, how far UDR's choice without labels agrees with the metrics, and
the failed runs. One offline file, its charts also in STUDY/figures as PNG, like the run
report; rerun it as the study grows.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PIL import Image

from untwine.errors import UntwineError
from untwine.files import atomic_write
from untwine.metrics import METRICS
from untwine.report import PAGE, REPORT, embed_file, section
from untwine.runs import FIGURES
from untwine.sweep.analysis import (
    RECONSTRUCTION,
    Run,
    best_runs,
    rank_correlations,
    ranking_key,
    score_keys,
    study_runs,
    udr_choices,
    variance_explained,
)
from untwine.sweep.runner import RUNS
from untwine.sweep.tables import mean_std
from untwine.viz.grid import save_png

STRIP_COLUMNS = 3  # score panels side by side in the scores-over-seeds chart


def study_report(study_dir: str | Path) -> Path:
    """Write the charts into STUDY/figures and STUDY/report.html that shows them, from study.db
    (drawing a best run's traversal where it has none); returns the page's path."""
    study_dir = Path(study_dir)
    runs = study_runs(study_dir)
    keys = score_keys(runs)
    done = [run for run in runs if run.status == "done"]
    ranking = ranking_key(keys)
    agreeing = rank_correlations(runs, keys)  # read by two sections
    best = best_runs(runs, ranking)
    traversals = best_traversals(study_dir, best)
    charts = _write_charts(
        study_dir / FIGURES,  # named as a run's figures folder is
        scores=scores_chart(runs, keys),
        agreement=agreement_chart(keys, agreeing),
        tradeoff=tradeoff_chart(runs, ranking),
    )
    sections = [
        section("Scores over seeds", _strips_html(runs, keys, charts.get("scores"))),
        section("How the metrics agree", _correlation_html(keys, charts.get("agreement"))),
        section("What explains each score", _variance_html(runs, keys)),
        section("Reconstruction against disentanglement", _figure_html(charts.get("tradeoff"))),
        section("The best run of each model", _best_html(study_dir, best, traversals, ranking)),
        section("Choosing without labels (UDR)", _udr_html(runs, keys, agreeing, ranking)),
        section("Failed runs", _failed_html(runs)),
    ]
    models = len({run.model for run in runs})
    summary = (
        f"{len(runs)} runs of {models} model{'s' * (models != 1)}: {len(done)} done, "
        f"{sum(run.status == 'failed' for run in runs)} failed, "
        f"{sum(run.status not in ('done', 'failed') for run in runs)} to run. "
        "Rerun <code>untwine report</code> on this directory as the study grows."
    )
    title = f"untwine study report: {study_dir.name}"
    page = PAGE.format(
        title=html.escape(title), summary=summary, body="\n".join(s for s in sections if s)
    )
    path = study_dir / REPORT
    atomic_write(path, page.encode())
    return path


def _write_charts(folder: Path, **charts: Image.Image | None) -> dict[str, Path]:
    """Each chart as folder/NAME.png; a chart the runs no longer support loses its old file."""
    written = {}
    for name, image in charts.items():
        path = folder / f"{name}.png"
        if image is None:
            path.unlink(missing_ok=True)
        else:
            written[name] = save_png(image, path)
    return written


def _figure_html(path: Path | None, alt: str = "") -> str:
    return f"<figure>{embed_file(path, alt)}</figure>" if path else ""


def _meaning(key: str) -> str:
    if key == "udr":
        return "UDR: how well the run's latents match its setting's other seeds one to one."
    for metric in METRICS.values():
        if key in metric.meanings:
            return metric.meanings[key]
    return ""


def scores_chart(runs: list[Run], keys: list[str]) -> Image.Image | None:
    """Each headline score: a row of points (one per seed) per setting, coloured by model."""
    done = [run for run in runs if run.status == "done"]
    if not done or not keys:
        return None
    from untwine.viz.charts import new_figure, render

    settings = list(dict.fromkeys(run.setting for run in runs))
    models = list(dict.fromkeys(run.model for run in runs))
    colour = {model: f"C{i % 10}" for i, model in enumerate(models)}  # as the trade-off plot's
    columns = min(STRIP_COLUMNS, len(keys))
    rows = -(-len(keys) // columns)
    figure = new_figure(2.0 + 3.2 * columns, rows * (0.8 + 0.22 * len(settings)))
    for index, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, index + 1)
        for y, setting in enumerate(settings):
            mine = [run for run in done if run.setting == setting and key in run.metrics]
            values = [run.metrics[key] for run in mine]
            if not values:
                continue
            axes.scatter(values, [y] * len(values), s=16, color=colour[mine[0].model], alpha=0.8)
            axes.vlines(np.mean(values), y - 0.35, y + 0.35, color="#c44e52", linewidth=1.2)
        axes.set_yticks(range(len(settings)), settings if index % columns == 0 else [])
        axes.set_ylim(len(settings) - 0.5, -0.5)  # the study file's order, top to bottom
        axes.grid(axis="y", color="#eeeeee", linewidth=0.6)
        axes.set_axisbelow(True)
        axes.set_title(key, fontsize=9)
        axes.tick_params(labelsize=7)
    return render(figure)


def _strips_html(runs: list[Run], keys: list[str], chart: Path | None) -> str:
    """The scores-over-seeds chart, then each setting's mean ± std over seeds as a table."""
    if chart is None:
        return "<p>No run is done and scored yet.</p>"
    done = [run for run in runs if run.status == "done"]
    meanings = "".join(
        f"<li><code>{html.escape(k)}</code>: {html.escape(_meaning(k))}</li>" for k in keys
    )
    header = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for setting in dict.fromkeys(run.setting for run in runs):
        members = [run for run in runs if run.setting == setting]
        mine = [run for run in done if run.setting == setting]
        cells = "".join(
            f"<td>{mean_std([r.metrics[k] for r in mine if k in r.metrics])}</td>" for k in keys
        )
        rows.append(
            f"<tr><td>{html.escape(setting)}</td><td>{len(mine)}/{len(members)}</td>{cells}</tr>"
        )
    return (
        _figure_html(chart, "scores over seeds")
        + "<p>Each point is a run (a seed), coloured by model; the red bar is the setting's "
        "mean. Mean ± std over seeds:</p>"
        f"<table><tr><th>setting</th><th>done</th>{header}</tr>{''.join(rows)}</table>"
        f"<ul>{meanings}</ul>"
    )


def agreement_chart(keys: list[str], matrix: np.ndarray) -> Image.Image | None:
    """The rank-correlation matrix as a heatmap, each cell written out (a dash where undefined)."""
    if len(keys) < 2:
        return None
    from untwine.viz.charts import new_figure, render

    side = 1.6 + 0.42 * len(keys)
    figure = new_figure(side + 0.8, side)
    axes = figure.add_subplot(1, 1, 1)
    shown = axes.imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", vmin=-1, vmax=1)
    shown.cmap.set_bad("#dddddd")
    for (i, j), value in np.ndenumerate(matrix):
        text = "-" if np.isnan(value) else f"{value:.2f}".replace("0.", ".")
        colour = "white" if abs(value) > 0.6 else "black"
        axes.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
    axes.set_xticks(range(len(keys)), keys, rotation=60, ha="right")
    axes.set_yticks(range(len(keys)), keys)
    axes.tick_params(labelsize=7)
    figure.colorbar(shown, ax=axes, shrink=0.6).ax.tick_params(labelsize=7)
    return render(figure)


def _correlation_html(keys: list[str], chart: Path | None) -> str:
    if chart is None:
        return ""
    return (
        "<p>Spearman rank correlation of each pair of scores over the done runs: 1 means the two "
        "order the runs alike, 0 that they are unrelated (the reference study found some "
        f"metrics agree, others not).</p>{_figure_html(chart, 'rank correlations')}"
    )


def _variance_html(runs: list[Run], keys: list[str]) -> str:
    rows = []
    for key in [*keys, RECONSTRUCTION]:
        shares = variance_explained(runs, key)
        if shares:
            cells = "".join(f"<td>{shares[part]:.0%}</td>" for part in ("model", "setting", "seed"))
            rows.append(f"<tr><th>{html.escape(key)}</th>{cells}</tr>")
    if not rows:
        return "<p>Needs three or more done runs whose scores differ.</p>"
    return (
        "<p>Share of each score's variance over the done runs explained by the objective "
        "(model), by its setting within the model (hyperparameters) and by the seed within "
        "the setting (the rest). The reference study found the seed and hyperparameters "
        "matter more than the objective.</p>"
        "<table><tr><th>score</th><th>model</th><th>setting</th><th>seed</th></tr>"
        f"{''.join(rows)}</table>"
    )


def tradeoff_chart(runs: list[Run], key: str | None) -> Image.Image | None:
    """Reconstruction against the ranking score, one point per done run, coloured by model."""
    points = [
        run
        for run in runs
        if run.status == "done" and key and {key, RECONSTRUCTION} <= set(run.metrics)
    ]
    if not points:
        return None
    from untwine.viz.charts import new_figure, render

    figure = new_figure(6.0, 3.6)
    axes = figure.add_subplot(1, 1, 1)
    for model in dict.fromkeys(run.model for run in points):
        mine = [run for run in points if run.model == model]
        axes.scatter(
            [run.metrics[RECONSTRUCTION] for run in mine],
            [run.metrics[key] for run in mine],
            label=model,
            s=20,
        )
    axes.set_xlabel("reconstruction (nats per input, lower is better)", fontsize=8)
    axes.set_ylabel(key, fontsize=8)
    axes.legend(fontsize=7)
    axes.tick_params(labelsize=7)
    return render(figure)


def best_traversals(study_dir: Path, best: list[Run]) -> dict[str, Path]:
    """Each best run's RUN/figures/traversal.png, drawn (as `untwine traverse` does) where the
    run has none yet; a run whose folder cannot be read (weights not here) goes without."""
    from untwine.viz import traverse
    from untwine.viz.traversal import TRAVERSAL

    found = {}
    for run in best:
        run_dir = study_dir / RUNS / run.name
        path = run_dir / FIGURES / TRAVERSAL
        try:
            found[run.name] = path if path.is_file() else traverse(run_dir)
        except UntwineError:
            continue
    return found


def _best_html(
    study_dir: Path, best: list[Run], traversals: dict[str, Path], key: str | None
) -> str:
    cards = []
    for run in best:
        run_dir = study_dir / RUNS / run.name
        traversal = traversals.get(run.name)
        thumbnail = embed_file(traversal, "traversal", "thumb") if traversal else ""
        link = f"{RUNS}/{html.escape(run.name)}/{REPORT}"
        own = (
            f'<a href="{link}">its report</a>'
            if (run_dir / REPORT).is_file()
            else f"its report: <code>untwine report {html.escape(str(run_dir))}</code>"
        )
        cards.append(
            f"<figure><figcaption><b>{html.escape(run.name)}</b>: {key} "
            f"{run.metrics[key]:.3f}; {own}</figcaption>{thumbnail}</figure>"
        )
    return f"<p>By {html.escape(key)}, per model.</p>" + "".join(cards) if cards else ""


def _udr_html(runs: list[Run], keys: list[str], matrix: np.ndarray, key: str | None) -> str:
    if "udr" not in keys:
        return (
            "<p>No UDR yet: a sweep scores it once two seeds of a setting are done "
            "(it needs no labels).</p>"
        )
    udr_row = matrix[keys.index("udr")]
    cells = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{'-' if np.isnan(v) else f'{v:.2f}'}</td></tr>"
        for k, v in zip(keys, udr_row, strict=True)
        if k != "udr"
    )
    text = (
        "<p>Spearman rank correlation of UDR with each score over the runs that have both.</p>"
        f"<table><tr><th>score</th><th>with UDR</th></tr>{cells}</table>"
    )
    choices = udr_choices(runs, key) if key else []
    if choices:
        hits = sum(choice["top"] for choice in choices)
        rows = "".join(
            f"<tr><td>{html.escape(c['model'])}</td><td>{html.escape(c['chosen'])}</td>"
            f"<td>{c['rank']} of {c['runs']}</td><td>{'yes' if c['top'] else 'no'}</td></tr>"
            for c in choices
        )
        text += (
            f"<p>Choosing each model's run by UDR alone picks one in its top quarter by "
            f"{html.escape(key)} for {hits} of {len(choices)} models.</p>"
            f"<table><tr><th>model</th><th>UDR's choice</th><th>its rank by {html.escape(key)}"
            f"</th><th>top quarter</th></tr>{rows}</table>"
        )
    return text


def _failed_html(runs: list[Run]) -> str:
    failed = [run for run in runs if run.status == "failed"]
    if not failed:
        return ""
    items = "".join(
        f"<li><code>{html.escape(run.name)}</code>: {html.escape(run.error or '')}</li>"
        for run in failed
    )
    return f'<ul class="warnings">{items}</ul>'
