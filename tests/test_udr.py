"""UDR (Duan et al. 2020): runs that agree up to order and sign score 1, unrelated runs 0."""

from __future__ import annotations

import numpy as np
import pytest

from untwine.errors import UntwineError
from untwine.metrics.udr import latent_similarity, pair_score, udr

N = 2000


@pytest.fixture(scope="module")
def factors():
    return np.random.default_rng(0).standard_normal((N, 4))


def test_the_pair_score_is_the_papers_formula_by_hand():
    similarity = np.array([[0.8, 0.2], [0.1, 0.0]])
    rows = 0.8**2 / 1.0 + 0.1**2 / 0.1  # each row: its max squared over its sum
    columns = 0.8**2 / 0.9 + 0.2**2 / 0.2
    assert pair_score(similarity) == pytest.approx((rows + columns) / 4)
    assert pair_score(np.zeros((3, 2))) == 0.0


def test_runs_equal_up_to_order_sign_and_scale_score_one(factors):
    reordered = -3 * factors[:, [2, 0, 3, 1]] + 1
    monotone = np.exp(factors[:, ::-1])  # rank correlation sees through a monotone map
    result = udr([factors, reordered, monotone])
    np.testing.assert_allclose(result["scores"], 1.0)
    np.testing.assert_allclose(result["pairs"], 1.0)


def test_unrelated_runs_score_zero():
    rng = np.random.default_rng(1)
    result = udr([rng.standard_normal((N, 5)) for _ in range(3)])
    np.testing.assert_allclose(result["scores"], 0.0)


def test_a_rotated_run_agrees_less(factors):
    angle = np.pi / 4
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    score = udr([factors, factors @ rotation])["scores"][0]
    assert 0.4 < score < 0.9  # two of four latents mixed: the others still match


def test_the_run_that_disagrees_with_the_others_is_the_one_ranked_last(factors):
    rng = np.random.default_rng(2)
    runs = [factors, factors[:, ::-1], 2 * factors, rng.standard_normal((N, 4))]
    scores = udr(runs)["scores"]
    np.testing.assert_allclose(scores[:3], 1.0)  # each: median of 1, 1 and 0
    assert scores[3] == pytest.approx(0.0)


def test_latents_with_no_kl_are_left_out_and_otherwise_count(factors):
    rng = np.random.default_rng(3)
    idle = 0.5 * rng.standard_normal((N, 2))  # collapsed latents: posterior ~ prior
    padded = [np.concatenate([factors, idle], axis=1), np.concatenate([factors, idle[::-1]], 1)]
    kl = [np.array([2.0, 2.0, 2.0, 2.0, 0.001, 0.002])] * 2
    assert udr(padded, kl)["scores"] == pytest.approx([1.0, 1.0])
    assert udr(padded)["scores"][0] < 0.9  # unfiltered, each idle latent scores 0


def test_a_latent_that_never_varies_is_left_out_of_a_code_without_kl(factors):
    levels = np.round(factors * 2) / 2  # a quantised code
    constant = np.full((N, 1), 0.5)  # a latent stuck on one value
    runs = [np.concatenate([levels, constant], 1), np.concatenate([-levels[:, ::-1], constant], 1)]
    assert udr(runs)["scores"] == pytest.approx([1.0, 1.0])


def test_the_lasso_variant_reads_an_exact_copy_as_its_shrinkage(factors):
    assert udr([factors, factors], method="lasso")["scores"] == pytest.approx([0.9, 0.9])
    similarity = latent_similarity(factors, np.random.default_rng(4).standard_normal((N, 3)))
    assert similarity.shape == (4, 3) and not similarity.any()


def test_too_few_runs_or_different_inputs_are_one_line_errors(factors):
    with pytest.raises(UntwineError, match="needs at least 2, got 1"):
        udr([factors])
    with pytest.raises(UntwineError, match=r"same inputs, got \[10, 2000\]"):
        udr([factors, factors[:10]])
