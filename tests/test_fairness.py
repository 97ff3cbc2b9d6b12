"""Fairness (Locatello et al. 2019b): the total variation by hand, and codes whose predictors
are known to leak a sensitive factor, or not."""

from __future__ import annotations

import numpy as np
import pytest

from untwine.data import GroundTruthDataset
from untwine.metrics import measure
from untwine.metrics.fairness import aggregates, fairness, group_unfairness


class Grid(GroundTruthDataset):
    """Three factors (4, 5 and 3 values) whose observations are the factor vectors."""

    factor_names, factor_sizes, observation_shape = ("a", "b", "c"), (4, 5, 3), (3,)

    def observations(self, indices):
        return self.index_to_factors(indices).astype(np.float32)


def test_group_unfairness_is_the_total_variation_to_the_pooled_predictions():
    split = np.array([[10, 0], [0, 30]])  # value 0 always predicts class 0, value 1 class 1
    pooled = np.array([10, 30]) / 40
    by_value = [np.abs([1, 0] - pooled).sum() / 2, np.abs([0, 1] - pooled).sum() / 2]
    mean, most = group_unfairness(split)
    assert mean == pytest.approx((10 * by_value[0] + 30 * by_value[1]) / 40)
    assert most == pytest.approx(max(by_value))
    assert group_unfairness(np.array([[3, 3], [7, 7]])) == (0.0, 0.0)


def test_a_code_that_holds_each_factor_apart_is_perfectly_fair():
    result = fairness(Grid(), lambda x: x.astype(float), np.random.default_rng(0), num_train=600)
    assert not result["mean"].any() and not result["max"].any()


def test_a_predictor_that_reads_the_sensitive_factor_is_unfair_towards_it():
    def leaky(x):  # a and b only as their sum: a guess at a moves with b, and back
        return np.stack([x[:, 0] + x[:, 1], x[:, 2]], axis=1).astype(float)

    mean = fairness(Grid(), leaky, np.random.default_rng(0), num_train=2000)["mean"]
    assert mean[0, 1] > 0.1 and mean[1, 0] > 0.1  # predicting a, intervening on b; and back
    assert not mean[2].any()  # c's latent is its own: its predictor reads nothing else
    exact = fairness(Grid(), lambda x: x.astype(float), np.random.default_rng(0), num_train=2000)
    assert not exact["mean"].any()  # a predictor that reads a exactly is fair, whatever else


def test_the_reference_aggregations_by_hand():
    matrix = np.array([[0.0, 0.2, 0.4], [0.1, 0.0, 0.3], [0.5, 0.6, 0.0]])
    found = aggregates(matrix, "m")
    assert found["m:mean_pred:mean_sens"] == pytest.approx(np.mean([0.3, 0.2, 0.55]))
    assert found["m:max_pred:max_sens"] == pytest.approx(0.6)
    assert found["m:mean_sens:max_pred"] == pytest.approx(np.mean([0.5, 0.6, 0.4]))
    assert found["m:mean_pred:max_sens"] == pytest.approx(np.mean([0.4, 0.3, 0.6]))


def test_the_registered_score_names_the_papers_aggregate_and_each_target_factor():
    scores = measure(["fairness"], Grid(), lambda x: x.astype(float), samples=300, seed=0)
    assert scores["fairness"] == scores["fairness.mean_fairness:mean_pred:mean_sens"] == 0.0
    assert {"fairness.a", "fairness.b", "fairness.c"} <= set(scores)
