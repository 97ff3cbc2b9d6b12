"""A study's tables: results.csv (a row per run, every score) and results.md (mean ± std over
seeds, per setting, headline scores)."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from untwine.files import atomic_write
from untwine.metrics import headline_keys
from untwine.sweep.study import Study


def write_tables(study: Study, rows: list[dict[str, Any]], out: Path) -> None:
    """Write out/results.csv and out/results.md, atomically."""
    atomic_write(out / "results.csv", results_csv(study, rows).encode())
    atomic_write(out / "results.md", results_markdown(study, rows).encode())


def results_csv(study: Study, rows: list[dict[str, Any]]) -> str:
    """One line per run: its name, status, swept values, seconds trained, every scalar score."""
    swept = _swept_keys(study)
    scores = _score_keys(rows)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["name", "status", *swept, "train_s", *scores, "error"])
    by_name = {run.name: run for run in study.runs}
    for row in rows:
        settings = [by_name[row["name"]].swept.get(key, "") for key in swept]
        values = [row["metrics"].get(key, "") for key in scores]
        trained, error = row["train_s"] or "", row["error"] or ""
        writer.writerow([row["name"], row["status"], *settings, trained, *values, error])
    return text.getvalue()


def results_markdown(study: Study, rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds for each setting, in grid order; failed runs named below."""
    settings = [key for key in _swept_keys(study) if key != "train.seed"]
    shown = headline_keys()  # and the undotted keys of model health (kl, reconstruction...)
    headline = [k for k in _score_keys(rows) if "." not in k or k in shown]
    lines = [
        f"# {study.name}",
        "",
        "| " + " | ".join([*settings, "done", *headline]) + " |",
        "|" + "---|" * (len(settings) + 1 + len(headline)),
    ]
    by_name = {row["name"]: row for row in rows}
    groups: dict[tuple, list[Any]] = {}
    for run in study.runs:
        setting = tuple(str(run.swept.get(key, "-")) for key in settings)  # "-": not set there
        groups.setdefault(setting, []).append(run)
    for setting, members in groups.items():
        done = [by_name[r.name] for r in members if by_name.get(r.name, {}).get("status") == "done"]
        cells = [*setting, f"{len(done)}/{len(members)}"]
        cells += [mean_std([d["metrics"][k] for d in done if k in d["metrics"]]) for k in headline]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {row['name']}: {row['error']}" for row in failed]
    return "\n".join(lines) + "\n"


def _swept_keys(study: Study) -> list[str]:
    return list(dict.fromkeys(key for run in study.runs for key in run.swept))


def _score_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every scalar score any run has, in the order they first appear."""
    keys = (k for row in rows for k, v in row["metrics"].items() if isinstance(v, int | float))
    return list(dict.fromkeys(keys))


def mean_std(values: list[float]) -> str:
    """`0.356 ± 0.017` (sample std), one value as it is, none as `-`."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
