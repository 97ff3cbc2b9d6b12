"""Losses against hand computations; convention: sum over pixels and dims, mean over batch."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from untwine.errors import UntwineError
from untwine.losses import kl_normal, reconstruction


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
