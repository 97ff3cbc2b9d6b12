"""A study's tables: results.csv (a row per run, every score) and results.md (mean ± std over
seeds, per setting, headline scores)."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from untwine.files import atomic_write
from untwine.metrics import METRICS, headline_keys, parse_metrics
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
    """Mean ± std over seeds for each setting, in grid order; then, per metric with a term per
    factor, those terms; failed runs named below."""
    settings = [key for key in _swept_keys(study) if key != "train.seed"]
    shown = headline_keys()  # and the undotted keys of model health (kl, reconstruction...)
    headline = [k for k in _score_keys(rows) if "." not in k or k in shown]
    lines = [
        f"# {study.name}",
        "",
        "| " + " | ".join([*settings, "done", *headline]) + " |",
        "|" + "---|" * (len(settings) + 1 + len(headline)),
    ]
    groups = _done_by_setting(study, rows, settings)
    for setting, (done, members) in groups.items():
        cells = [*setting, f"{len(done)}/{members}"]
        cells += [mean_std([d["metrics"][k] for d in done if k in d["metrics"]]) for k in headline]
        lines.append("| " + " | ".join(cells) + " |")
    for name, factors in _per_factor_keys(study, rows).items():
        lines += ["", f"`{name}` by factor (each factor's term):", ""]
        lines.append("| " + " | ".join([*settings, *factors]) + " |")
        lines.append("|" + "---|" * (len(settings) + len(factors)))
        for setting, (done, _) in groups.items():
            terms = [f"{name}.{factor}" for factor in factors]
            cells = [mean_std([d["metrics"][k] for d in done if k in d["metrics"]]) for k in terms]
            lines.append("| " + " | ".join([*setting, *cells]) + " |")
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {row['name']}: {row['error']}" for row in failed]
    return "\n".join(lines) + "\n"


def _done_by_setting(
    study: Study, rows: list[dict[str, Any]], settings: list[str]
) -> dict[tuple, tuple[list[dict[str, Any]], int]]:
    """Setting (values of `settings`, "-" where not set) -> (its finished rows, its run count)."""
    by_name = {row["name"]: row for row in rows}
    groups: dict[tuple, tuple[list[dict[str, Any]], int]] = {}
    for run in study.runs:
        setting = tuple(str(run.swept.get(key, "-")) for key in settings)
        done, members = groups.get(setting, ([], 0))
        if by_name.get(run.name, {}).get("status") == "done":
            done = [*done, by_name[run.name]]
        groups[setting] = (done, members + 1)
    return groups


def _per_factor_keys(study: Study, rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each scored metric that writes a term per factor -> the factors its terms name."""
    names = parse_metrics(study.metrics) if study.metrics else []
    found = {}
    for name in names:
        if not METRICS[name].per_factor:
            continue
        own = set(METRICS[name].meanings)
        keys = (k for row in rows for k in row["metrics"] if k.startswith(f"{name}."))
        factors = [k.removeprefix(f"{name}.") for k in dict.fromkeys(keys) if k not in own]
        if factors:
            found[name] = factors
    return found


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
