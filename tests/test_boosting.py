"""The compiled boosted trees behind DCI against scikit-learn's GradientBoostingClassifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from untwine.metrics._boosting import fit_boosted_trees


def _problem(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One informative feature (class / K + noise) and three noise features."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = np.column_stack([labels / classes + rng.normal(0, 0.2, n), rng.normal(size=(n, 3))])
    return x, labels


def test_grows_sklearns_trees_for_two_classes():
    x, labels = _problem(600, 2)
    x_test, _ = _problem(300, 2, seed=1)
    importance, train_pred, test_pred = fit_boosted_trees(x, labels, x_test, n_stages=20)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, labels)
    np.testing.assert_array_equal(train_pred, model.predict(x))
    np.testing.assert_array_equal(test_pred, model.predict(x_test))
    np.testing.assert_allclose(importance, model.feature_importances_, atol=1e-3)
    assert importance.sum() == pytest.approx(1.0)


def test_agrees_with_sklearn_for_many_classes_up_to_ties():
    """Splits that tie to the last bit (common in tiny nodes) may go either way."""
    x, labels = _problem(2000, 5)
    x_test, _ = _problem(500, 5, seed=1)
    importance, train_pred, test_pred = fit_boosted_trees(x, labels, x_test, n_stages=20)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, labels)
    assert np.mean(train_pred == model.predict(x)) > 0.98
    assert np.mean(test_pred == model.predict(x_test)) > 0.97
    np.testing.assert_allclose(importance, model.feature_importances_, atol=0.01)


def test_the_bins_organise_the_search_but_never_change_it():
    x, labels = _problem(800, 4)
    runs = [fit_boosted_trees(x, labels, x[:100], n_stages=10, n_bins=b) for b in (4, 64, 800)]
    for importance, train_pred, test_pred in runs[1:]:
        np.testing.assert_allclose(importance, runs[0][0], atol=1e-12)
        np.testing.assert_array_equal(train_pred, runs[0][1])
        np.testing.assert_array_equal(test_pred, runs[0][2])


def test_values_closer_than_sklearns_threshold_are_never_split_apart():
    labels = np.array([0, 1] * 50)
    x = np.column_stack([1.0 + labels * 5e-8, np.zeros(100)])  # float32-distinct, 5e-8 apart
    importance, train_pred, _ = fit_boosted_trees(x, labels, x)
    assert np.all(importance == 0.0) and np.all(train_pred == train_pred[0])
