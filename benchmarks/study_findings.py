"""The reference study's findings, read from a study directory `untwine sweep` wrote.

Prints one JSON object: per setting, each score's mean, std, min and max over seeds (the bands
a user should expect); per objective, each score's range over all its runs; the share of each
score's variance the objective, its setting and the seed explain, and the rank correlation of
each pair of scores, over every run and over the unsupervised objectives alone (the reference
study's question); within each objective, the rank correlation of its regularisation strength
with the total correlation of the mean code (`unsupervised.gaussian_total_correlation`) and of
the sampled code (`tc_critic`), with MIG, reconstruction and unfairness; UDR's pick per
objective; and which objective's best setting leads by MIG in each seed. docs/study.md reads it.

    python benchmarks/study_findings.py studies/reference
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from untwine.models import MODELS
from untwine.models.pairs import PairVAE
from untwine.sweep.analysis import (
    Run,
    rank_correlations,
    score_keys,
    study_runs,
    udr_choices,
    variance_explained,
)

EXTRA = (  # scores the study file asks for beyond the headline ones
    "unsupervised.gaussian_total_correlation",
    "tc_critic",
    "fairness",
    "reconstruction",
    "active_units",
)
TRACKED = (
    "unsupervised.gaussian_total_correlation",
    "tc_critic",
    "mig",
    "reconstruction",
    "fairness",
)
WEAKER = {"capacity_max"}  # options whose larger value regularises less


def strengths(configs: list[dict]) -> list[float] | None:
    """Each run's regularisation strength (larger: stronger): the one numeric model option that
    varies between the runs of an objective; None where there is not exactly one."""
    varied = [
        key
        for key, value in configs[0]["model"].items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and len({config["model"].get(key) for config in configs}) > 1
    ]
    if len(varied) != 1:
        return None
    sign = -1.0 if varied[0] in WEAKER else 1.0
    return [sign * float(config["model"][varied[0]]) for config in configs]


def _follows(levels: list[float], values: list[float]) -> float:
    """Spearman rank correlation of `values` with `levels`, runs without the score left out."""
    return round(float(spearmanr(levels, values, nan_policy="omit").statistic), 3)


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {
        "mean": round(float(array.mean()), 4),
        "std": round(float(array.std(ddof=1)), 4) if len(array) > 1 else 0.0,
        "min": round(float(array.min()), 4),
        "max": round(float(array.max()), 4),
        "runs": len(array),
    }


def _by(runs: list[Run], label, keys: list[str]) -> dict[str, dict]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(label(run), []).append(run)
    return {
        name: {
            k: _summary([r.metrics[k] for r in mine if k in r.metrics])
            for k in keys
            if any(k in r.metrics for r in mine)
        }
        for name, mine in groups.items()
    }


def findings(study_dir: Path) -> dict:
    """Everything docs/study.md quotes, from `study_dir/study.db`."""
    runs = [run for run in study_runs(study_dir) if run.status == "done"]
    keys = list(dict.fromkeys([*score_keys(runs), *EXTRA]))
    keys = [k for k in keys if any(k in run.metrics for run in runs)]
    unsupervised = [run for run in runs if not _weakly_supervised(run)]
    tracking = {}
    for model in dict.fromkeys(run.model for run in runs):
        mine = [run for run in runs if run.model == model]
        levels = strengths([run.config for run in mine])
        if levels is None:
            continue
        tracking[model] = {
            k: _follows(levels, [r.metrics.get(k, np.nan) for r in mine])
            for k in TRACKED
            if any(k in r.metrics for r in mine)
        }
    leaders = {}
    for seed in sorted({run.config["train"]["seed"] for run in runs}):
        best: dict[str, float] = {}
        for run in runs:
            if run.config["train"]["seed"] == seed and "mig" in run.metrics:
                best[run.model] = max(best.get(run.model, -1.0), run.metrics["mig"])
        leaders[str(seed)] = sorted(best, key=best.get, reverse=True)
    return {
        "runs_done": len(runs),
        "train_hours": round(sum(run.train_s or 0 for run in runs) / 3600, 2),
        "settings": _by(runs, lambda run: run.setting, keys),
        "objectives": _by(runs, lambda run: run.model, keys),
        "variance_explained": _shares(runs, keys),
        "variance_explained_unsupervised": _shares(unsupervised, keys),
        "rank_correlations": _correlations(runs, keys),
        "rank_correlations_unsupervised": _correlations(unsupervised, keys),
        "strength_rank_correlation": tracking,
        "udr_choices_by_mig": udr_choices(runs, "mig") if "udr" in keys else [],
        "mig_leaders_per_seed": leaders,
    }


def _shares(runs: list[Run], keys: list[str]) -> dict[str, dict[str, float]]:
    """Each score's variance split (objective, setting, seed) over `runs`, rounded."""
    return {
        k: {part: round(share, 3) for part, share in shares.items()}
        for k in keys
        if (shares := variance_explained(runs, k))
    }


def _correlations(runs: list[Run], keys: list[str]) -> dict[str, dict[str, float]]:
    """Spearman correlation of each pair of scores over `runs`, as nested dicts, rounded."""
    matrix = rank_correlations(runs, keys)
    return {
        a: {b: round(float(v), 3) for b, v in zip(keys, row, strict=True)}
        for a, row in zip(keys, matrix, strict=True)
    }


def _weakly_supervised(run: Run) -> bool:
    """Whether the run's model learns from pairs (Ada-GVAE, Ada-ML-VAE)."""
    constructor = MODELS.get(run.config["model"]["name"])
    return isinstance(constructor, type) and issubclass(constructor, PairVAE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path)
    print(json.dumps(findings(parser.parse_args().study_dir), indent=2))


if __name__ == "__main__":
    main()
