"""The critic's total correlation against Gaussian codes whose TC is known in closed form."""

import json

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from untwine.errors import UntwineError
from untwine.metrics import score, tc_critic


def correlated_pairs(rhos: list[float], n: int = 10_000, dim: int = 10, seed: int = 0):
    """Standard normal codes whose columns (2k, 2k + 1) have correlation rhos[k].

    A Gaussian's TC is -1/2 log det of its correlation matrix: here sum_k -1/2 log(1 - rho_k^2).
    """
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, dim))
    for k, rho in enumerate(rhos):
        codes[:, 2 * k + 1] = rho * codes[:, 2 * k] + np.sqrt(1 - rho**2) * codes[:, 2 * k + 1]
    return codes, sum(-0.5 * np.log(1 - rho**2) for rho in rhos)


@pytest.mark.parametrize("rhos", [[0.8], [0.93, 0.93]], ids=["0.51 nats", "2.00 nats"])
def test_the_critic_reads_a_known_total_correlation_within_15_percent(rhos):
    codes, true_tc = correlated_pairs(rhos)
    result = tc_critic(codes, seed=0)
    assert result["tc"] == pytest.approx(true_tc, rel=0.15)
    assert result["dv_bound"] == pytest.approx(true_tc, rel=0.15)  # a bound, and a tight one here
    assert 0.5 < result["accuracy"] < 1 and result["epochs"] >= 1


def test_the_critic_finds_no_total_correlation_in_independent_codes():
    codes, _ = correlated_pairs([])
    result = tc_critic(codes, seed=0)
    assert abs(result["tc"]) <= 0.05 and result["dv_bound"] <= 0.05
    assert result["accuracy"] == pytest.approx(0.5, abs=0.03)


def test_the_critic_ignores_column_scale_and_constant_columns_and_keeps_the_global_rng():
    codes, _ = correlated_pairs([0.8], n=2_000, dim=4)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    plain = tc_critic(codes, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert tc_critic(codes, seed=1) == plain  # deterministic for a seed
    rescaled = np.column_stack([codes * [1e-3, 50.0, 1.0, 7.0], np.full(len(codes), 3.0)])
    assert tc_critic(rescaled, seed=1)["tc"] == pytest.approx(plain["tc"], abs=1e-3)
    one_varying = np.column_stack([codes[:, 0], np.zeros(len(codes))])
    assert tc_critic(one_varying)["tc"] == 0.0


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (np.zeros((199, 3)), "tc_critic needs at least 200 codes, got 199"),
        (np.full((300, 2), np.nan), "codes must hold finite numbers"),
        (np.zeros(300), "codes must be a matrix"),
    ],
)
def test_bad_codes_are_one_line_errors(codes, message):
    with pytest.raises(UntwineError, match=message):
        tc_critic(codes)


def test_without_factors_score_runs_the_code_metrics_and_all_skips_the_critic_on_few_rows():
    codes, _ = correlated_pairs([0.8], n=300, dim=3)
    results = score(codes, seed=0)
    assert {"tc_critic", "tc_critic.dv_bound", "unsupervised.mutual_info_score"} <= set(results)
    assert "tc_critic" not in score(codes[:150])
    with pytest.raises(UntwineError, match="'mcc' needs ground-truth factors"):
        score(codes, metrics="mcc")


def test_score_a_codes_only_file_from_the_command_line(tmp_path):
    codes, true_tc = correlated_pairs([0.93], n=2_000, dim=4)
    np.savez(tmp_path / "codes.npz", codes=codes)
    result = run_cli("score", str(tmp_path / "codes.npz"), "--metrics", "tc_critic")
    out = json.loads(result.stdout)
    assert set(out) == {"tc_critic", "tc_critic.dv_bound", "tc_critic.accuracy", "tc_critic.epochs"}
    assert out["tc_critic"] == pytest.approx(true_tc, rel=0.15)
