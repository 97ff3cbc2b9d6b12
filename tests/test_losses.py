"""Losses against hand computations; convention: sum over pixels and dims, mean over batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from untwine.errors import UntwineError
from untwine.losses import (
    covariance,
    density_ratio_tc,
    dip_penalty,
    elbo_decomposition,
    kl_normal,
    log_normal,
    mmd,
    permute_dims,
    reconstruction,
)
from untwine.nn import LatentDiscriminator


def test_kl_normal_matches_the_closed_form_per_dimension():
    mu = torch.tensor([[0.0, 1.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)]])
    # 0.5 * (mu^2 + sigma^2 - log sigma^2 - 1), written out by hand
    expected = [0.0, 0.5 * (1 + 4 - math.log(4) - 1), 0.5 * (4 + 0.25 - math.log(0.25) - 1)]
    torch.testing.assert_close(kl_normal(mu, logvar)[0], torch.tensor(expected))


def test_kl_normal_agrees_with_torch_distributions():
    mu, logvar = torch.randn(16, 5), torch.randn(16, 5)
    reference = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(kl_normal(mu, logvar), reference)


def test_bernoulli_reconstruction_sums_pixels_and_averages_the_batch():
    logits = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 3.0]]]])  # (B=2, C=1, H=1, W=2)
    x = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])
    sigmoid = torch.sigmoid(logits)
    per_image = [
        -(math.log(sigmoid[0, 0, 0, 0]) + math.log(1 - sigmoid[0, 0, 0, 1])),
        -(math.log(1 - sigmoid[1, 0, 0, 0]) + math.log(sigmoid[1, 0, 0, 1])),
    ]
    assert reconstruction(logits, x, "bernoulli").item() == pytest.approx(
        sum(per_image) / 2, rel=1e-6
    )


def test_reconstruction_does_not_depend_on_batch_size():
    logits, x = torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    one = reconstruction(logits, x, "bernoulli")
    twice = reconstruction(torch.cat([logits, logits]), torch.cat([x, x]), "bernoulli")
    torch.testing.assert_close(one, twice)


def test_unknown_likelihood_is_a_user_error():
    with pytest.raises(UntwineError, match="unknown likelihood 'poisson'"):
        reconstruction(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "poisson")


@pytest.mark.parametrize(
    ("likelihood", "distribution"),
    [("gaussian", torch.distributions.Normal), ("laplace", torch.distributions.Laplace)],
)
def test_continuous_reconstruction_is_the_negative_log_density(likelihood, distribution):
    output, x = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    log_scale = torch.tensor(-0.7)
    expected = -distribution(output, log_scale.exp()).log_prob(x).flatten(1).sum(1).mean()
    torch.testing.assert_close(reconstruction(output, x, likelihood, log_scale), expected)


def test_log_normal_agrees_with_torch_distributions():
    z, mu, logvar = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    expected = Normal(mu, (0.5 * logvar).exp()).log_prob(z)
    torch.testing.assert_close(log_normal(z, mu, logvar), expected)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_mi_tc_and_dimension_wise_kl_add_up_to_the_sampled_kl(estimator):
    torch.manual_seed(0)
    mu, logvar = torch.randn(32, 4), torch.randn(32, 4) * 0.3
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    terms = elbo_decomposition(z, mu, logvar, dataset_size=1000, estimator=estimator)
    sampled_kl = (log_normal(z, mu, logvar) - log_normal(z, 0 * z, 0 * z)).sum(1).mean()
    torch.testing.assert_close(terms["mi"] + terms["tc"] + terms["dwkl"], sampled_kl)


def _mss_by_loops(z, mu, logvar, n):
    """Chen et al.'s MSS written out sample by sample: 1/N on the sample's own posterior, the
    stratum weight (N - M)/(N M) on one other, 1/M on the rest (M = B - 1); TC in nats."""
    batch, dim = z.shape
    m = batch - 1
    density = Normal(mu, (0.5 * logvar).exp())
    tc = 0.0
    for i in range(batch):
        weights = [
            1 / n if j == i else (n - m) / (n * m) if j == (i + 1) % batch else 1 / m
            for j in range(batch)
        ]
        assert sum(weights) == pytest.approx(1.0)
        log_q = density.log_prob(z[i].expand(batch, dim)).double()  # (B, D): log q(z_i[d] | x_j)
        joint = sum(w * log_q[j].sum().exp() for j, w in enumerate(weights)).log()
        marginals = sum(
            sum(w * log_q[j, d].exp() for j, w in enumerate(weights)).log() for d in range(dim)
        )
        tc += (joint - marginals).item() / batch
    return tc


def test_mss_matches_the_paper_written_out_by_loops():
    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    terms = elbo_decomposition(z, mu, logvar, dataset_size=50, estimator="mss")
    assert terms["tc"].item() == pytest.approx(_mss_by_loops(z, mu, logvar, 50), rel=1e-9)


def test_mss_and_mws_part_where_posteriors_do_not_overlap():
    """No two posteriors overlap in any dimension: log q(z_i) is the log weight of the sample's
    own posterior plus its density, so TC = (D - 1) log(1 / own weight): log B for MWS, log N
    for MSS (the paper's 1/N). Chen et al.'s released code gives most rows 1/M, so ~log M."""
    batch, dim, n = 64, 3, 10_000
    mu = torch.arange(batch * dim, dtype=torch.float64).reshape(batch, dim)[torch.randperm(batch)]
    logvar = torch.full_like(mu, np.log(1e-6))
    z = mu + 1e-3 * torch.randn_like(mu)
    mws = elbo_decomposition(z, mu, logvar, n, "mws")["tc"].item()
    mss = elbo_decomposition(z, mu, logvar, n, "mss")["tc"].item()
    assert mws == pytest.approx((dim - 1) * np.log(batch), abs=1e-6)
    assert mss == pytest.approx((dim - 1) * np.log(n), abs=1e-6)


def test_mss_and_mws_both_see_a_correlated_gaussian_at_moderate_widths():
    """Posteriors of N = 2,000 points whose means are correlated: TC > 0, both estimators see it."""
    torch.manual_seed(0)
    a, b = torch.randn(2000), torch.randn(2000)
    mu_all = torch.stack([a, 0.8 * a + 0.6 * b], dim=1)
    logvar_all = torch.full_like(mu_all, np.log(0.05))
    estimates = {"mws": [], "mss": []}
    for _ in range(300):
        index = torch.randint(2000, (128,))
        mu, logvar = mu_all[index], logvar_all[index]
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        for name, values in estimates.items():
            values.append(elbo_decomposition(z, mu, logvar, 2000, name)["tc"].item())
    gaussian_tc = -0.5 * np.log(1 - 0.8**2)  # TC of the means' Gaussian, about 0.51 nats
    assert np.mean(estimates["mws"]) == pytest.approx(gaussian_tc, rel=0.2)
    assert np.mean(estimates["mss"]) == pytest.approx(gaussian_tc, rel=0.2)


def test_mss_refuses_a_batch_larger_than_the_dataset():
    z = torch.zeros(8, 2)
    with pytest.raises(UntwineError, match="mss estimator needs 2 <= batch size <= dataset size"):
        elbo_decomposition(z, z, z, dataset_size=4, estimator="mss")


def test_dip_penalty_by_hand():
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]])
    assert dip_penalty(cov, lambda_od=3.0, lambda_d=7.0).item() == pytest.approx(3 * 0.5 + 7 * 1)
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    torch.testing.assert_close(covariance(x), torch.tensor(np.cov(x.numpy().T, bias=True)).float())


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_is_near_zero_for_one_distribution_and_grows_with_a_shift(kernel):
    torch.manual_seed(0)
    x, y = torch.randn(500, 4), torch.randn(500, 4)
    same = mmd(x, y, kernel).item()
    shifted = [mmd(x, y + shift, kernel).item() for shift in (0.5, 1.0, 2.0)]
    assert abs(same) < 0.005
    assert shifted[0] > 0.01 and shifted == sorted(shifted)


def test_permute_dims_shuffles_each_column_on_its_own():
    torch.manual_seed(0)
    a = torch.randn(2000)
    z = torch.stack([a, a + 0.1 * torch.randn(2000)], dim=1)
    shuffled = permute_dims(z)
    for d in range(2):
        assert torch.equal(shuffled[:, d].sort().values, z[:, d].sort().values)
    assert np.corrcoef(z.T)[0, 1] > 0.99 and abs(np.corrcoef(shuffled.T)[0, 1]) < 0.1


def test_a_discriminator_learns_to_tell_correlated_from_permuted_samples():
    """The density-ratio trick then recovers the total correlation of a correlated Gaussian."""
    torch.manual_seed(0)
    critic = LatentDiscriminator(2, hidden=64, layers=3)
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
    scale = torch.linalg.cholesky(torch.tensor([[1.0, 0.9], [0.9, 1.0]]))
    labels = torch.cat([torch.zeros(256), torch.ones(256)]).long()
    for _ in range(400):
        z = torch.randn(256, 2) @ scale.T
        logits = critic(torch.cat([z, permute_dims(z)]))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    z = torch.randn(4000, 2) @ scale.T
    with torch.no_grad():
        logits = critic(torch.cat([z, permute_dims(z)]))
        accuracy = (
            (logits.argmax(1) == torch.cat([labels[:1].repeat(4000), labels[-1:].repeat(4000)]))
            .float()
            .mean()
        )
        tc = density_ratio_tc(critic(z)).item()
    assert accuracy > 0.7
    assert tc == pytest.approx(-0.5 * np.log(1 - 0.9**2), abs=0.3)  # 0.83 nats
