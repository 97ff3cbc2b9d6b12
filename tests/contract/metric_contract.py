"""What every registered metric promises, checked on a tiny dataset whose observations are its
factors, so the identity encoder's answer is known. `test_metric_contract.py` runs these over
the registry; a metric registered anywhere else can be checked with the same functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from untwine.data import GroundTruthDataset
from untwine.errors import UntwineError
from untwine.metrics import Metric, measure, score

SAMPLES = 300  # enough for every registered metric's minimum, small enough for a test
BAD_CODES = {
    "NaN codes": lambda n: np.full((n, 3), np.nan),
    "a vector, not a matrix": lambda n: np.zeros(n),
    "one row too few": lambda n: np.zeros((max(n - 1, 0), 3)),
}


class FactorRows(GroundTruthDataset):
    """Three independent factors (4, 5 and 3 values); each observation is its factor vector."""

    factor_names = ("a", "b", "c")
    factor_sizes = (4, 5, 3)
    observation_shape = (3,)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        return self.index_to_factors(indices).astype(np.float32)


def identity(observations: np.ndarray) -> np.ndarray:
    """The perfect code: each latent is one factor."""
    return observations.astype(np.float64)


def identity_posterior(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q(z|x) tight around the perfect code."""
    return identity(observations), np.full(observations.shape, 2 * math.log(0.05))


def entangled(observations: np.ndarray) -> np.ndarray:
    """Every latent a mix of every factor: the columns depend on one another."""
    return observations @ np.array([[1.0, 0.9, 0.8], [0.8, 1.0, 0.9], [0.9, 0.8, 1.0]])


def summed(observations: np.ndarray) -> np.ndarray:
    """Two latents, a + b and b + c: three factors cannot be read back from them, so a guess
    at one moves with the others."""
    return observations @ np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def noise(seed: int):
    """An encoder and posterior that ignore the input: codes drawn afresh each call."""
    rng = np.random.default_rng(seed)

    def encode(observations: np.ndarray) -> np.ndarray:
        return rng.normal(size=(len(observations), 3))

    def posterior(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return encode(observations), np.full((len(observations), 3), 2 * math.log(0.05))

    return encode, posterior


def scores(metric: Metric, encode, posterior=None, *, seed: int = 0, samples: int = SAMPLES):
    """The metric alone on FactorRows, as `untwine evaluate` would draw it."""
    if posterior is None:
        posterior = (lambda x: (encode(x), np.full((len(x), 3), -6.0))) if encode else None
    return measure(
        [metric.name], FactorRows(), encode, posterior=posterior, samples=samples, seed=seed
    )


def check_keys_and_values(metric: Metric) -> None:
    """It writes its main key, only keys under its name, and finite numbers."""
    found = scores(metric, identity, identity_posterior)
    assert metric.main in found
    assert all(key == metric.name or key.startswith(f"{metric.name}.") for key in found), found
    assert all(np.isfinite(value) for value in found.values()), found
    assert set(metric.headline_keys()) <= set(found)


def check_identity_beats_a_bad_code(metric: Metric) -> None:
    """The perfect code scores better than noise (a metric of factors) or than entangled codes
    (a metric of the codes alone, which cannot tell noise from factors), or the code its
    `bad_code` names (fairness: summed factors, since a predictor of noise or of an invertible
    mix is fair)."""
    good = scores(metric, identity, identity_posterior)[metric.main]
    bad_code = metric.bad_code or ("noise" if metric.needs_factors else "entangled")
    if bad_code == "noise":
        bad = scores(metric, *noise(1))[metric.main]
    else:
        bad = scores(metric, {"entangled": entangled, "summed": summed}[bad_code])[metric.main]
    margin = 0.1 if metric.better == "higher" else -0.1
    assert (good - bad - margin) * (1 if metric.better == "higher" else -1) > 0, (good, bad)


def check_deterministic(metric: Metric) -> None:
    """The same seed and the same code give the same scores; a metric may use the seed."""
    first = scores(metric, *noise(2), seed=3)
    assert scores(metric, *noise(2), seed=3) == first


def check_bad_input_is_one_line(metric: Metric) -> None:
    """Codes that are NaN, not a matrix, or missing rows; too few points: a one-line error."""
    for label, bad in BAD_CODES.items():
        with pytest.raises(UntwineError) as error:
            scores(metric, lambda x, bad=bad: bad(len(x)), lambda x, bad=bad: (bad(len(x)),) * 2)
        assert "\n" not in str(error.value), label
    with pytest.raises(UntwineError, match=f"{metric.name}.*at least"):
        scores(metric, identity, identity_posterior, samples=1)
    if metric.kind in ("codes", "latents"):  # the ones `score` runs on arrays
        for label, rows in (
            ("NaN", np.full((9, 3), np.nan)),
            ("a vector", np.zeros(9)),
            ("one row", np.zeros((1, 3))),
        ):
            factors = np.zeros((len(rows), 3), int) if metric.needs_factors else None
            with pytest.raises(UntwineError) as error:
                score(rows, factors, metrics=[metric.name])
            assert "\n" not in str(error.value), label


CHECKS = (
    check_keys_and_values,
    check_identity_beats_a_bad_code,
    check_deterministic,
    check_bad_input_is_one_line,
)
