"""A study's runs read for analysis: what sets each apart, and the numbers its report shows.

`study_runs` reads `study.db` into `Run`s (the objective, the setting within it, the scores);
the rest compute from them: how much of a score the objective, the setting and the seed
explain, how the scores rank the runs alike, each model's best run, and where UDR's choice
lands by a supervised score. `report.py` draws these; `benchmarks/study_findings.py` prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from untwine.config import DATA_DERIVED_OPTIONS
from untwine.errors import UntwineError
from untwine.metrics import headline_keys
from untwine.sweep.store import ResultStore

CHOSEN_BY = ("mig", "dci.disentanglement", "factor_vae", "beta_vae")  # first present ranks runs
RECONSTRUCTION = "reconstruction"
TOP_SHARE = 0.25  # "a run in the top quarter"


@dataclass(frozen=True)
class Run:
    """One run of the study as its report reads it."""

    name: str
    model: str  # the objective: the model's name, and its variant where the study varies it
    setting: str  # the model and the options that set it apart from its other runs, bar the seed
    status: str
    metrics: dict[str, Any]
    error: str | None
    config: dict[str, Any] = field(default_factory=dict)  # section -> option -> value
    train_s: float | None = None  # seconds its training took, where it trained


def study_runs(study_dir: Path) -> list[Run]:
    """Every run in `study_dir/study.db`, in the order the study lists them."""
    path = study_dir / "study.db"
    if not path.is_file():
        raise UntwineError(f"{study_dir} holds no study.db: give a study directory or a run")
    store = ResultStore(path)
    try:
        rows = store.every_run()
    finally:
        store.close()
    configs = [_flat(row["config"]) for row in rows]
    models = {config["model.name"] for config in configs}
    varying = {  # per model: what sets its runs apart
        model: _varying([c for c in configs if c["model.name"] == model]) for model in models
    }
    found = []
    for row, config in zip(rows, configs, strict=True):
        keys = varying[config["model.name"]]
        shown = [f"{key.removeprefix('model.')}={config[key]}" for key in keys if key in config]
        variant = f"-{config['model.variant']}" if "model.variant" in keys else ""
        found.append(
            Run(
                name=row["name"],
                model=config["model.name"] + variant,  # DIP-VAE I and II: two objectives
                setting=" ".join([config["model.name"], *shown]),
                status=row["status"],
                metrics=row["metrics"],
                error=row["error"],
                config=row["config"],
                train_s=row["train_s"],
            )
        )
    return found


def _varying(configs: list[dict[str, Any]]) -> list[str]:
    """The options, less the seed and what the data sets, that differ between `configs`."""
    keys = set().union(*configs) - {"model.name", "train.seed"}
    return sorted(
        key
        for key in keys
        if key.removeprefix("model.") not in DATA_DERIVED_OPTIONS
        and len({json.dumps(c.get(key), sort_keys=True) for c in configs}) > 1
    )


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section, options in config.items()
        for key, value in options.items()
    }


def score_keys(runs: list[Run]) -> list[str]:
    """The headline scores the done runs have (registry order), then `udr` if scored."""
    present = {key for run in runs if run.status == "done" for key in run.metrics}
    keys = [key for key in headline_keys() if key in present]
    return keys + (["udr"] if "udr" in present else [])


def variance_explained(runs: list[Run], key: str) -> dict[str, float] | None:
    """Shares of the variance of `key` over the done runs explained by the model (objective),
    by the setting within its model (hyperparameters) and by the seed within its setting
    (the rest): a nested sum-of-squares decomposition. None with fewer than 3 runs."""
    done = [run for run in runs if run.status == "done" and key in run.metrics]
    values = np.array([run.metrics[key] for run in done], dtype=float)
    if len(done) < 3 or not values.var() > 0:
        return None
    models = np.array([run.model for run in done])
    settings = np.array([run.setting for run in done])
    model_mean = {m: values[models == m].mean() for m in set(models)}
    setting_mean = {s: values[settings == s].mean() for s in set(settings)}
    # settings nest in models, so the three sums of squares add up to the total
    by_model = sum((model_mean[m] - values.mean()) ** 2 for m in models)
    by_setting = sum(
        (setting_mean[s] - model_mean[m]) ** 2 for s, m in zip(settings, models, strict=True)
    )
    by_seed = sum((v - setting_mean[s]) ** 2 for v, s in zip(values, settings, strict=True))
    total = by_model + by_setting + by_seed
    return {"model": by_model / total, "setting": by_setting / total, "seed": by_seed / total}


def rank_correlations(runs: list[Run], keys: list[str]) -> np.ndarray:
    """Spearman correlation of each pair of `keys` over the runs that have both, (k, k)."""
    matrix = np.eye(len(keys))
    for i, a in enumerate(keys):
        for j, b in enumerate(keys[:i]):
            pairs = [
                (run.metrics[a], run.metrics[b])
                for run in runs
                if run.status == "done" and a in run.metrics and b in run.metrics
            ]
            rho = np.nan
            if len(pairs) >= 3:
                x, y = np.array(pairs, dtype=float).T
                if x.std() > 0 and y.std() > 0:
                    rho = spearmanr(x, y).statistic
            matrix[i, j] = matrix[j, i] = rho
    return matrix


def ranking_key(keys: list[str]) -> str | None:
    """The supervised score that ranks runs: the first of MIG, DCI, FactorVAE, BetaVAE present."""
    return next((key for key in CHOSEN_BY if key in keys), None)


def udr_choices(runs: list[Run], key: str) -> list[dict[str, Any]]:
    """Per model with UDR on two or more runs: the run UDR ranks first, its rank by `key`, and
    whether that is in the model's top quarter by `key` (at least its best run)."""
    found = []
    for model in dict.fromkeys(run.model for run in runs):
        scored = [
            run
            for run in runs
            if run.model == model and run.status == "done" and {"udr", key} <= set(run.metrics)
        ]
        if len(scored) < 2:
            continue
        chosen = max(scored, key=lambda run: run.metrics["udr"])
        by_score = sorted(scored, key=lambda run: -run.metrics[key])
        rank = by_score.index(chosen) + 1
        found.append(
            {
                "model": model,
                "chosen": chosen.name,
                "rank": rank,
                "runs": len(scored),
                "top": rank <= max(1, int(np.ceil(TOP_SHARE * len(scored)))),
            }
        )
    return found


def best_runs(runs: list[Run], key: str | None) -> list[Run]:
    """Each model's done run with the highest `key`, in the study's model order."""
    found = []
    for model in dict.fromkeys(run.model for run in runs):
        mine = [r for r in runs if r.model == model and r.status == "done" and key in r.metrics]
        if mine:
            found.append(max(mine, key=lambda run: run.metrics[key]))
    return found
