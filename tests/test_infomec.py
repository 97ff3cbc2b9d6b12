"""InfoMEC (Hsu et al. 2023): a tiny case by hand, and codes whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from untwine.metrics import infomec
from untwine.metrics.infomec import normalised_mutual_information


def test_a_tiny_discrete_case_matches_the_hand_computation():
    f0 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    f1 = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    codes = np.stack([f0, f0 & f1], axis=1)  # z0 = f0, z1 = f0 AND f1
    factors = np.stack([f0, f1], axis=1)
    bias = 1 * 1 / (2 * 8)  # Miller-Madow: (2 - 1)(2 - 1) / 2n
    h = math.log(2)  # each factor's entropy
    # I(f0; z1): H(z1) = H(3/4, 1/4), H(z1 | f0) = (0 + log 2) / 2; f1 likewise, by symmetry
    h_and = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mi_and = h_and - 0.5 * math.log(2)
    expected = np.array(
        [
            [(h - bias) / h, (mi_and - bias) / h],  # f0 against z0, z1
            [0.0, (mi_and - bias) / h],  # f1 against z0 (0 less the bias, clipped), z1
        ]
    )
    nmi = normalised_mutual_information(codes, factors, discrete=True)
    np.testing.assert_allclose(nmi, expected)
    scores = infomec(codes, factors, noise_floor=0.0)
    # InfoM: z0's share 1, z1's 1/2 -> mean 3/4, rescaled from [1/2, 1] to [0, 1]
    assert scores["infomec.infom"] == pytest.approx((0.75 - 0.5) / 0.5)
    share_f0 = expected[0, 0] / expected[0].sum()  # InfoC: f0's share, f1's 1
    assert scores["infomec.infoc"] == pytest.approx(((share_f0 + 1) / 2 - 0.5) / 0.5)
    assert scores["infomec.active_latents"] == 2


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, size, 10_000) for size in (3, 6, 40, 32, 32)], axis=1)


@pytest.mark.parametrize("jitter", [0.0, 1e-3], ids=["discrete", "continuous"])
def test_a_permuted_copy_of_the_factors_scores_one(factors, jitter):
    rng = np.random.default_rng(1)
    codes = factors[:, [2, 0, 4, 1, 3]] + jitter * rng.standard_normal(factors.shape)
    scores = infomec(codes, factors)
    for key in ("infomec.infom", "infomec.infoe", "infomec.infoc"):
        assert scores[key] == pytest.approx(1.0, abs=0.02), (key, scores)


def test_noise_scores_zero(factors):
    codes = np.random.default_rng(2).standard_normal((10_000, 10))
    scores = infomec(codes, factors)
    assert scores["infomec.infom"] == scores["infomec.infoc"] == 0.0
    assert scores["infomec.infoe"] < 0.01 and scores["infomec.active_latents"] == 10


def test_two_latents_that_mix_two_factors_lose_modularity_and_compactness(factors):
    x, y = factors[:, 3], factors[:, 4]
    codes = np.stack([x + y, x - y, factors[:, 0], factors[:, 1], factors[:, 2]], axis=1)
    scores = infomec(codes.astype(float), factors)
    assert 0.5 < scores["infomec.infom"] < 0.9 and 0.5 < scores["infomec.infoc"] < 0.9
    assert scores["infomec.infoe"] > 0.9  # a linear read-out still recovers x and y


def test_collapsed_latents_are_left_out_and_none_active_scores_zero(factors):
    codes = np.concatenate([factors.astype(float), np.zeros((10_000, 3))], axis=1)
    assert infomec(codes, factors)["infomec.active_latents"] == 5
    assert infomec(np.zeros((10_000, 4)), factors)["infomec.infom"] == 0.0
