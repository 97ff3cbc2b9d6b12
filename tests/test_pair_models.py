"""The weakly-supervised pair models: shared dimensions, both poolings and the loss, by hand."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch.distributions import Normal, kl_divergence

from untwine import runs
from untwine.data import load_dataset, to_tensor
from untwine.errors import UntwineError
from untwine.explore import Explorer
from untwine.explore.app import create_app
from untwine.losses import kl_normal, reconstruction
from untwine.models import create_model
from untwine.models.adagvae import AdaGVAE
from untwine.models.adamlvae import AdaMLVAE
from untwine.models.pairs import kl_between_normals, shared_dimensions
from untwine.train import build, sample_batch

from .conftest import run_cli, tiny_config


def test_kl_between_normals_is_torchs_kl_per_dimension():
    g = torch.Generator().manual_seed(0)
    mu1, mu2, logvar1, logvar2 = torch.randn(4, 3, 5, generator=g)
    expected = kl_divergence(Normal(mu1, (0.5 * logvar1).exp()), Normal(mu2, (0.5 * logvar2).exp()))
    torch.testing.assert_close(kl_between_normals(mu1, logvar1, mu2, logvar2), expected)


def test_a_pair_shares_the_dimensions_below_halfway_between_its_least_and_most_kl():
    divergence = torch.tensor(
        [
            [0.1, 0.2, 5.0, 3.0],  # threshold 2.55: the first two are shared
            [1.0, 1.0, 1.0, 1.0],  # nothing stands out: nothing is shared
            [0.0, 2.0, 4.0, 1.9],  # threshold 2.0 exactly: 2.0 is not below it
        ]
    )
    expected = [[True, True, False, False], [False] * 4, [True, False, False, True]]
    assert shared_dimensions(divergence).tolist() == expected


def test_ada_gvae_pools_by_averaging_means_and_variances():
    mu, logvar = AdaGVAE.pool(
        torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([3.0]), torch.tensor([3.0]).log()
    )
    assert mu.item() == pytest.approx(2.0)  # (1 + 3) / 2
    assert logvar.exp().item() == pytest.approx(2.0)  # (1 + 3) / 2


def test_ada_ml_vae_pools_as_the_normalised_product_of_the_two_gaussians():
    mu, logvar = AdaMLVAE.pool(
        torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([3.0]), torch.tensor([3.0]).log()
    )
    assert logvar.exp().item() == pytest.approx(0.75)  # 1 / (1/1 + 1/3)
    assert mu.item() == pytest.approx(1.5)  # (1/1 + 3/3) * 0.75
    grid = torch.linspace(-6, 8, 20_001)  # the product's density, normalised numerically
    product = Normal(1.0, 1.0).log_prob(grid).exp() * Normal(3.0, 3.0**0.5).log_prob(grid).exp()
    product /= torch.trapezoid(product, grid)
    mean = torch.trapezoid(grid * product, grid)
    variance = torch.trapezoid((grid - mean) ** 2 * product, grid)
    assert mean.item() == pytest.approx(1.5, abs=1e-4)
    assert variance.item() == pytest.approx(0.75, abs=1e-4)


@pytest.fixture(scope="module")
def pair_batch():
    """Four dSprites pairs that differ in one factor: first observations, then partners."""
    return sample_batch(load_dataset("dsprites"), 8, torch.Generator().manual_seed(0), "cpu", 1)


@pytest.mark.parametrize("name", ["adagvae", "adamlvae"])
def test_the_loss_is_the_beta_vae_loss_of_every_observation_with_pooled_posteriors(
    pair_batch, name
):
    model = create_model(name, observation_shape=(1, 64, 64), latent_dim=5, hidden=(32,), beta=3.0)
    torch.manual_seed(1)
    terms = model.loss(pair_batch, step=0)
    torch.manual_seed(1)
    mu, logvar = model.encode(pair_batch)
    mu1, mu2, logvar1, logvar2 = mu[:4], mu[4:], logvar[:4], logvar[4:]
    variance1, variance2 = logvar1.exp(), logvar2.exp()
    kl = 0.5 * (variance1 / variance2 + (mu1 - mu2) ** 2 / variance2 - 1 + logvar2 - logvar1)
    pooled_mu, pooled_logvar = model.pool(mu1, logvar1, mu2, logvar2)
    rows = []
    for i in range(4):  # pair by pair, dimension by dimension
        threshold = (kl[i].min() + kl[i].max()) / 2
        for own_mu, own_logvar in ((mu1[i], logvar1[i]), (mu2[i], logvar2[i])):
            rows.append(
                [
                    (pooled_mu[i, d], pooled_logvar[i, d])
                    if kl[i, d] < threshold
                    else (own_mu[d], own_logvar[d])
                    for d in range(5)
                ]
            )
    order = [0, 2, 4, 6, 1, 3, 5, 7]  # each pair's first observation, then the partners
    used_mu = torch.stack([torch.stack([m for m, _ in rows[j]]) for j in order])
    used_logvar = torch.stack([torch.stack([v for _, v in rows[j]]) for j in order])
    z = used_mu + torch.randn_like(used_mu) * (0.5 * used_logvar).exp()
    recon = reconstruction(model.decode(z), pair_batch, "bernoulli")  # mean over all 8
    kl_prior = kl_normal(used_mu, used_logvar).sum(1).mean()
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["kl"], kl_prior)
    torch.testing.assert_close(terms["loss"], recon + 3.0 * kl_prior)
    shared = sum(kl[i] < (kl[i].min() + kl[i].max()) / 2 for i in range(4)).sum() / 4
    torch.testing.assert_close(terms["shared_dims"], shared.float())


def test_the_representation_is_one_observations_posterior_mean(pair_batch):
    model = create_model("adagvae", observation_shape=(1, 64, 64), latent_dim=5, hidden=(32,))
    single = model.representation(pair_batch[:1])
    torch.testing.assert_close(single, model.encode(pair_batch[:1])[0])


def test_the_trainer_draws_pairs_first_observations_then_their_partners():
    dataset = load_dataset("dsprites")
    batch = sample_batch(dataset, 8, torch.Generator().manual_seed(4), "cpu", pair_k=2)
    first, second = dataset.sample_pairs(4, 2, torch.Generator().manual_seed(4))
    expected = to_tensor(dataset.observations(np.concatenate([first, second])))
    torch.testing.assert_close(batch, expected)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.k": 5}, r"^model\.k must be -1 \(drawn for each pair\) or 1\.\.4, as pairs"),
        ({"model.k": 0}, r"^model\.k must be -1 \(drawn for each pair\) or at least 1, got 0"),
        ({"train.batch_size": 7}, r"^train\.batch_size counts both observations of each pair"),
    ],
)
def test_a_pair_model_refuses_pairs_the_data_cannot_give_at_the_door(overrides, message):
    config = tiny_config(**{"model.name": "adagvae", **overrides})
    with pytest.raises(UntwineError, match=message):
        build(config, load_dataset("dsprites"))


def test_pair_models_sweep_score_report_and_explore_like_any_other(tmp_path):
    study = tmp_path / "pairs.yaml"
    study.write_text(
        "name: pairs\n"
        "base: {train: {steps: 4, batch_size: 8, device: cpu},"
        " model: {latent_dim: 3, hidden: [16]}}\n"
        "grid: {model.name: [adagvae, adamlvae], model.k: [1, -1]}\n"
        "seeds: [0]\n"
        "evaluate: {metrics: 'mig,dci', samples: 200}\n"
    )
    run_cli("sweep", str(study), "--out", str(tmp_path / "out"))
    with open(tmp_path / "out" / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["done"] * 4
    assert all(0 <= float(row["mig"]) <= 1 for row in rows)
    run = tmp_path / "out" / "runs" / "adamlvae-k_1-s0"
    assert "shared_dims" in runs.read_log(run)[-1]
    run_cli("report", str(run))
    assert (run / "report.html").exists() and (run / "figures" / "traversal.png").exists()
    info = TestClient(create_app(Explorer([run]))).get("/api/describe").json()
    assert len(info["runs"][0]["latents"]) == 3
