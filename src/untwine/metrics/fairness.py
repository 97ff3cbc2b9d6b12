"""Fairness (Locatello et al. 2019, "On the Fairness of Disentangled Representations")."""

from __future__ import annotations

import numpy as np

from untwine.data import Dataset
from untwine.metrics._boosting import fit_boosted_trees
from untwine.metrics._sampling import RepresentationFn, encode_factors, sample_codes
from untwine.metrics.registry import Inputs, Metric, register


def group_unfairness(counts: np.ndarray) -> tuple[float, float]:
    """Mean and max total-variation distance between the prediction distribution under each
    sensitive value and the pooled one; `counts` (predicted classes, sensitive values). The
    mean weighs each sensitive value by its count."""
    pooled = counts.sum(1) / counts.sum()
    per_value = counts.sum(0)
    distances = np.abs(counts / per_value - pooled[:, None]).sum(0) / 2
    return float((distances * per_value).sum() / per_value.sum()), float(distances.max())


def fairness(
    dataset: Dataset,
    representation_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test_points_per_class: int = 100,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Unfairness of a predictor of each target factor towards each other, sensitive, factor.

    As disentanglement_lib computes it: per target factor i, gradient-boosted trees (sklearn's
    defaults; untwine's compiled equivalent) learn i from `num_train` codes. Per sensitive
    factor j, `num_test_points_per_class` factor vectors are drawn once and j set to each of
    its values in turn (an intervention); the predictions of i under each value are compared
    with their pooled distribution by total variation. Returns `mean` and `max` (k, k): the
    count-weighted mean and the largest distance over j's values, 0 on the diagonal.
    """
    codes, factors = sample_codes(dataset, representation_fn, num_train, rng)
    k, n = len(dataset.factor_sizes), num_test_points_per_class
    mean, most = np.zeros((k, k)), np.zeros((k, k))
    for i in range(k):
        sensitive = [j for j in range(k) if j != i]
        interventions = np.concatenate([_intervened(dataset, j, n, rng) for j in sensitive])
        test_codes = encode_factors(dataset, representation_fn, interventions, rng)
        classes, labels = np.unique(factors[:, i], return_inverse=True)
        if len(classes) < 2:  # a constant target: the same prediction everywhere, fair
            continue
        predicted = fit_boosted_trees(codes, labels, test_codes, seed=seed)[2].reshape(-1, n)
        start = 0
        for j in sensitive:
            rows = predicted[start : start + dataset.factor_sizes[j]]  # one per value of j
            counts = np.stack([np.bincount(p, minlength=len(classes)) for p in rows], axis=1)
            mean[i, j], most[i, j] = group_unfairness(counts)
            start += dataset.factor_sizes[j]
    return {"mean": mean, "max": most}


def _intervened(dataset: Dataset, j: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n factor vectors drawn once, repeated with factor j set to each of its values in turn:
    (size_j * n, k), value by value."""
    drawn = dataset.sample_factors(n, rng)
    blocks = []
    for value in range(dataset.factor_sizes[j]):
        block = drawn.copy()
        block[:, j] = value
        blocks.append(block)
    return np.concatenate(blocks)


def aggregates(matrix: np.ndarray, prefix: str) -> dict[str, float]:
    """The reference's aggregations of a (target, sensitive) matrix, under its key names:
    `{prefix}:mean_pred:mean_sens` averages over sensitive factors, then targets, and so on."""
    rows = _without_diagonal(matrix)  # per target, over sensitive factors
    columns = _without_diagonal(matrix.T)  # per sensitive, over targets
    by_row = {"mean": [r.mean() for r in rows], "max": [r.max() for r in rows]}
    by_column = {"mean": [c.mean() for c in columns], "max": [c.max() for c in columns]}
    found = {}
    for outer in ("mean", "max"):
        pick = np.mean if outer == "mean" else np.max
        for inner in ("mean", "max"):
            found[f"{prefix}:{outer}_sens:{inner}_pred"] = float(pick(by_column[inner]))
            found[f"{prefix}:{outer}_pred:{inner}_sens"] = float(pick(by_row[inner]))
    return found


def _without_diagonal(matrix: np.ndarray) -> list[np.ndarray]:
    """Each row of a square matrix less its diagonal entry."""
    return [np.delete(row, i) for i, row in enumerate(matrix)]


def _registered(inputs: Inputs) -> dict[str, float]:
    dataset = inputs.dataset
    result = fairness(
        dataset, inputs.encode, inputs.rng, num_train=inputs.samples, seed=inputs.seed
    )
    scores = {
        **aggregates(result["mean"], "mean_fairness"),
        **aggregates(result["max"], "max_fairness"),
    }
    main = scores["mean_fairness:mean_pred:mean_sens"]  # the paper's score
    per_factor = {
        f"fairness.{name}": float(row.mean())
        for name, row in zip(dataset.factor_names, _without_diagonal(result["mean"]), strict=True)
    }
    return {"fairness": main, **per_factor, **{f"fairness.{k}": v for k, v in scores.items()}}


AGGREGATES = {
    f"fairness.{kind}_fairness:{outer}_{first}:{inner}_{second}": (
        f"Unfairness, {kind} over each sensitive factor's values: the {outer} over "
        f"{'target' if first == 'pred' else 'sensitive'} factors of the {inner} over "
        f"{'sensitive' if first == 'pred' else 'target'} factors."
    )
    for kind in ("mean", "max")
    for first, second in (("pred", "sens"), ("sens", "pred"))
    for outer in ("mean", "max")
    for inner in ("mean", "max")
}

register(
    Metric(
        name="fairness",
        kind="sampled",
        compute=_registered,
        meanings={
            "fairness": "Unfairness: how much a predictor of each factor, trained on the "
            "latents, changes its predictions when another factor is intervened on (mean total "
            "variation; 0: not at all).",
            **AGGREGATES,
        },
        headline=("fairness",),
        better="lower",
        bad_code="summed",  # a predictor of noise, or of an invertible mix, is fair
        min_codes=10,
        per_factor="unfairness of the predictor of {factor}, mean over the other factors",
        references=("Locatello et al. 2019b",),
    )
)
