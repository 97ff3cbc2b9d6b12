"""β schedules: constant, linear warm-up, cyclical annealing; and β-VAE using them."""

from __future__ import annotations

import pytest
import torch

from untwine.models import Posterior, create_model
from untwine.schedules import anneal


def test_constant_linear_and_cyclical_schedules():
    assert [anneal("constant", s, 4.0, 100) for s in (0, 50, 500)] == [4.0, 4.0, 4.0]
    assert [anneal("linear", s, 4.0, 100) for s in (0, 25, 100, 500)] == [0.0, 1.0, 4.0, 4.0]
    cycle = [anneal("cyclical", s, 4.0, 100, ramp=0.5) for s in (0, 25, 50, 99, 100, 125)]
    assert cycle == [0.0, 2.0, 4.0, 4.0, 0.0, 2.0]


@pytest.mark.parametrize(("schedule", "expected"), [("constant", 6.0), ("linear", 3.0)])
def test_betavae_weighs_kl_by_the_scheduled_beta(schedule, expected):
    model = create_model(
        "betavae",
        observation_shape=(1, 64, 64),
        latent_dim=2,
        beta=6.0,
        beta_schedule=schedule,
        beta_period=1000,
    )
    kl_per_dim = torch.tensor([0.5, 1.5])
    posterior = Posterior(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), kl_per_dim)
    penalty, terms = model.regularizer(posterior, step=500)
    assert penalty.item() == pytest.approx(expected * 2.0)
    assert terms["beta"].item() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("schedule", "steps", "shortfall"),
    [
        ("constant", 10, None),
        ("linear", 1000, None),
        ("linear", 250, "the linear schedule takes β to 1.5 of 6;"),
        ("cyclical", 500, None),  # the first cycle's ramp (half of 1,000 steps) is done
        ("cyclical", 250, "the cyclical schedule takes β to 3 of 6;"),
    ],
)
def test_betavae_says_when_its_warm_up_would_outlast_training(schedule, steps, shortfall):
    model = create_model(
        "betavae", observation_shape=(4,), beta=6.0, beta_schedule=schedule, beta_period=1000
    )
    said = model.schedule_shortfall(steps)
    if shortfall is None:
        assert said is None
    else:
        assert said.startswith(f"model.beta_period=1000 outlasts train.steps={steps}: {shortfall}")
