"""Every registered model: a training step, gradients everywhere, save and reload, its objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import untwine
from untwine import runs
from untwine.config import TrainConfig
from untwine.data import load_dataset, to_tensor
from untwine.errors import UntwineError
from untwine.losses import elbo_decomposition, kl_normal, reconstruction
from untwine.models import MODELS, Posterior, create_model
from untwine.nn import hidden_activations

from .conftest import tiny_config

SHAPE = (1, 64, 64)


def make(name, **options):
    """A model for 64x64 single-channel data; the dataset size for estimators that need it, and
    dSprites' latent count for a model that sizes its code by the data (as training does)."""
    if "dataset_size" in MODELS.options(name):
        options.setdefault("dataset_size", 737_280)
    latents = MODELS.options(name).get("latent_dim")
    if latents is not None and latents.default is None:
        options.setdefault("latent_dim", 10)
    return create_model(name, observation_shape=SHAPE, **options)


@pytest.fixture(scope="module")
def batch():
    dataset = load_dataset("dsprites")
    return to_tensor(dataset.observations(torch.arange(0, 737_280, 737_280 // 8)[:8].numpy()))


def test_betavae_loss_is_recon_plus_beta_kl(batch):
    model = create_model("betavae", observation_shape=SHAPE, latent_dim=4, beta=6.0)
    torch.manual_seed(1)
    terms = model.loss(batch, step=0)
    torch.manual_seed(1)
    mu, logvar = model.encode(batch)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    recon = reconstruction(model.decode(z), batch, "bernoulli")
    kl = kl_normal(mu, logvar).sum(1).mean()
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["loss"], recon + 6.0 * kl)


def test_vae_is_betavae_with_beta_one(batch):
    torch.manual_seed(0)
    vae = create_model("vae", observation_shape=SHAPE, latent_dim=4, arch="conv64")
    beta1 = create_model("betavae", observation_shape=SHAPE, latent_dim=4, beta=1.0, arch="conv64")
    beta1.load_state_dict(vae.state_dict())
    torch.manual_seed(2)
    a = vae.loss(batch, 0)["loss"]
    torch.manual_seed(2)
    torch.testing.assert_close(a, beta1.loss(batch, 0)["loss"])


def test_loss_decreases_over_50_steps_on_a_tiny_subset(batch):
    torch.manual_seed(0)
    model = create_model("betavae", observation_shape=SHAPE, latent_dim=4, beta=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(50):
        loss = model.loss(batch, step)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"latent_dim": 0}, "latent_dim must be at least 1"),
        ({"beta": -1.0}, "beta must be non-negative"),
        ({"betta": 4}, "unknown option 'betta'"),
        ({"latent_dim": 2.5}, "latent_dim must be an integer"),
        ({"arch": "resnet"}, "arch must be one of conv64, conv64-deep, conv64-style, mlp"),
    ],
)
def test_bad_model_options_are_one_line_user_errors(options, message):
    with pytest.raises(UntwineError, match=message):
        create_model("betavae", observation_shape=SHAPE, **options)


@pytest.mark.parametrize("arch", ["conv64", "conv64-deep", "conv64-style"])
def test_conv_archs_refuse_other_image_sizes(arch):
    with pytest.raises(UntwineError, match=r"needs 64x64 images .* use arch mlp"):
        create_model("vae", observation_shape=(3, 32, 32), arch=arch)


@pytest.mark.parametrize(
    ("arch", "shape", "hidden"),
    [
        ("conv64-deep", (3, 64, 64), (1200, 1200)),
        ("conv64-style", (1, 64, 64), (1200, 1200)),
        ("mlp", (1, 64, 64), (64, 32)),
        ("mlp", (7,), (16,)),  # a table row of seven features
    ],
)
def test_every_arch_maps_observations_to_posteriors_and_back(arch, shape, hidden):
    torch.manual_seed(0)
    model = create_model(
        "vae",
        observation_shape=shape,
        latent_dim=3,
        arch=arch,
        hidden=hidden,
        likelihood="gaussian",
    )
    x = torch.rand(5, *shape)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, *shape)
    model.loss(x, step=0)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_mlp_hidden_sizes_are_the_layers_the_user_asked_for():
    model = create_model("vae", observation_shape=(7,), latent_dim=3, arch="mlp", hidden=(16, 8))
    encoder = [m.out_features for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    decoder = [m.out_features for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert encoder == [16, 8, 6] and decoder == [8, 16, 7]
    with pytest.raises(UntwineError, match="hidden must be positive layer sizes"):
        create_model("vae", observation_shape=(7,), arch="mlp", hidden=(16, 0))


def _penalty(model, batch, seed=3):
    """The model's regulariser on a batch, with the posterior it was computed from."""
    torch.manual_seed(seed)
    mu, logvar = model.encode(batch)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    posterior = Posterior(mu, logvar, z, kl_normal(mu, logvar).mean(0))
    return model.regularizer(posterior, step=0), posterior


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_betatcvae_adds_weighted_mi_tc_and_dimension_wise_kl(batch, estimator):
    model = make("betatcvae", latent_dim=4, alpha=2.0, beta=6.0, gamma=3.0, estimator=estimator)
    (penalty, terms), p = _penalty(model, batch)
    parts = elbo_decomposition(p.z, p.mu, p.logvar, 737_280, estimator)
    expected = p.kl_per_dim.sum() + parts["mi"] + 5 * parts["tc"] + 2 * parts["dwkl"]
    torch.testing.assert_close(penalty, expected)
    assert set(terms) == {"mi", "tc", "dwkl"}
    neutral = make("betatcvae", latent_dim=4, alpha=1.0, beta=1.0, gamma=1.0)
    neutral.load_state_dict(model.state_dict())
    (penalty, _), p = _penalty(neutral, batch)
    torch.testing.assert_close(penalty, p.kl_per_dim.sum())  # all weights 1: the plain KL


@pytest.mark.parametrize("variant", ["i", "ii"])
def test_dipvae_penalty_is_kl_plus_the_covariance_penalty(batch, variant):
    model = make("dipvae", latent_dim=4, variant=variant, lambda_od=2.0)
    (penalty, terms), p = _penalty(model, batch)
    mu = p.mu.detach().double()
    cov = (mu - mu.mean(0)).T @ (mu - mu.mean(0)) / len(mu)
    if variant == "ii":
        cov = cov + torch.diag(p.logvar.detach().double().exp().mean(0))
    off = cov - torch.diag(torch.diagonal(cov))
    lambda_d = 20.0 if variant == "i" else 2.0
    dip = 2.0 * (off**2).sum() + lambda_d * ((torch.diagonal(cov) - 1) ** 2).sum()
    assert terms["dip"].item() == pytest.approx(dip.item(), rel=1e-4)
    assert penalty.item() == pytest.approx((p.kl_per_dim.sum() + terms["dip"]).item(), rel=1e-6)


def test_infovae_weights_kl_and_mmd_as_the_paper_does(batch):
    model = make("infovae", latent_dim=4, alpha=0.5, lambda_=10.0)
    (penalty, terms), p = _penalty(model, batch)
    expected = 0.5 * p.kl_per_dim.sum() + 9.5 * terms["mmd"]
    torch.testing.assert_close(penalty, expected)
    plain = make("infovae", latent_dim=4, alpha=0.0, lambda_=1.0)
    (penalty, _), p = _penalty(plain, batch)
    torch.testing.assert_close(penalty, p.kl_per_dim.sum())  # α = 0, λ = 1: the VAE


def test_annealedvae_pulls_kl_towards_a_linearly_rising_capacity(batch):
    model = make("annealedvae", latent_dim=4, gamma=100.0, capacity_max=20.0, capacity_steps=1000)
    assert [model.capacity(s) for s in (0, 500, 1000, 5000)] == [0.0, 10.0, 20.0, 20.0]
    torch.manual_seed(0)
    mu, logvar = model.encode(batch)
    posterior = Posterior(mu, logvar, mu, kl_normal(mu, logvar).mean(0))
    penalty, terms = model.regularizer(posterior, step=500)
    kl = posterior.kl_per_dim.sum()
    torch.testing.assert_close(penalty, 100.0 * (kl - 10.0).abs())
    assert terms["capacity"].item() == 10.0


def test_annealedvae_says_when_its_ramp_would_outlast_training():
    model = make("annealedvae", latent_dim=4, capacity_max=20.0, capacity_steps=1000)
    assert model.schedule_shortfall(1000) is None
    assert model.schedule_shortfall(250).startswith(
        "model.capacity_steps=1000 outlasts train.steps=250: the capacity reaches 5 of 20 nats;"
    )


@pytest.mark.parametrize("name", MODELS.names())
def test_every_models_defaults_finish_their_schedules_within_the_default_training(name):
    assert make(name).schedule_shortfall(TrainConfig().steps) is None


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
def test_continuous_likelihoods_learn_their_scale_when_asked(batch, likelihood):
    model = make("vae", latent_dim=4, likelihood=likelihood, learn_scale=True)
    model.loss(batch, 0)["loss"].backward()
    assert model.log_scale.grad is not None and model.log_scale.grad.abs() > 0
    fixed = make("vae", latent_dim=4, likelihood=likelihood, likelihood_scale=0.1)
    assert "log_scale" not in dict(fixed.named_parameters())
    assert fixed.log_scale.item() == pytest.approx(np.log(0.1))


def test_bernoulli_refuses_data_outside_the_unit_interval():
    with pytest.raises(UntwineError, match=r"bernoulli likelihood needs data in \[0, 1\]"):
        make("vae").check_data(torch.tensor([[-0.5, 2.0]]))
    make("vae", likelihood="gaussian").check_data(torch.tensor([[-0.5, 2.0]]))


def test_factorvae_pays_gamma_times_the_discriminator_tc_and_trains_the_critic_apart(batch):
    model = make(
        "factorvae", latent_dim=4, gamma=20.0, discriminator_hidden=32, discriminator_layers=2
    )
    (penalty, terms), p = _penalty(model, batch)
    tc = (model.discriminator(p.z)[:, 0] - model.discriminator(p.z)[:, 1]).mean()
    torch.testing.assert_close(penalty, p.kl_per_dim.sum() + 20.0 * tc)
    assert {"tc", "discriminator_loss", "discriminator_accuracy"} <= set(terms)
    objectives = model.objectives()
    assert list(objectives) == ["loss", "discriminator_loss"]
    vae = {id(q) for q in objectives["loss"]["params"]}
    critic = {id(q) for q in objectives["discriminator_loss"]["params"]}
    assert not vae & critic and vae | critic == {id(q) for q in model.parameters()}
    assert objectives["discriminator_loss"]["options"]["betas"] == (0.5, 0.9)


def test_factorvae_gives_its_discriminator_k_steps_per_vae_step(tmp_path):
    config = tiny_config(
        **{
            "model.name": "factorvae",
            "model.discriminator_steps": 3,
            "model.discriminator_hidden": 16,
            "train.steps": 2,
        }
    )
    run = untwine.train(config, tmp_path / "run", progress=False)
    state = runs.load_state(run, "cpu")
    steps = {
        key: {int(s["step"]) for s in opt["state"].values()}
        for key, opt in state["optimizers"].items()
    }
    assert steps == {"loss": {2}, "discriminator_loss": {6}}
    with pytest.raises(UntwineError, match="discriminator_steps must be at least 1, got 0"):
        make("factorvae", discriminator_steps=0)


def test_the_style_decoder_modulates_every_resolution_and_shows_its_activations():
    torch.manual_seed(0)
    model = create_model("tripod", observation_shape=(1, 64, 64), latent_dim=4, arch="conv64-style")
    decoder, z = model.decoder, torch.rand(2, model.latent_dim)
    shapes = [tuple(h.shape) for h in hidden_activations(decoder, z)]
    assert shapes == [(2, 256), (2, 64, 8, 8), (2, 32, 16, 16), (2, 32, 32, 32)]
    other = z.clone()
    other[:, 0] += 1.0  # one latent moved: every block's scale and shift move with it
    for modulation in decoder.modulations:
        assert not torch.allclose(modulation(decoder.style(z)), modulation(decoder.style(other)))
    x = torch.rand(4, 1, 64, 64)
    model.loss(x, step=0)["loss"].backward()  # Tripod's Hessian penalty runs through it
    assert all(p.grad is not None for p in model.parameters())
