"""Every registered model: a training step, gradients everywhere, save and reload, its objective."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from untwine.data import load_dataset, to_tensor
from untwine.errors import UntwineError
from untwine.losses import kl_normal, reconstruction
from untwine.models import MODELS, create_model

SHAPE = (1, 64, 64)


@pytest.fixture(scope="module")
def batch():
    dataset = load_dataset("dsprites")
    return to_tensor(dataset.images(torch.arange(0, 737_280, 737_280 // 8)[:8].numpy()))


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_a_step_with_gradient_to_every_parameter(name, batch):
    torch.manual_seed(0)
    model = create_model(name, observation_shape=SHAPE, latent_dim=4)
    terms = model.loss(batch, step=0)
    assert {"loss", "recon", "kl", "kl_per_dim"} <= set(terms)
    assert terms["kl_per_dim"].shape == (4,)
    assert all(torch.isfinite(v).all() for v in terms.values())
    terms["loss"].backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_reloads_from_config_and_safetensors(name, batch, tmp_path):
    model = create_model(name, observation_shape=SHAPE, latent_dim=3)
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    again = create_model(**model.config)
    again.load_state_dict(load_file(tmp_path / "w.safetensors"))
    torch.testing.assert_close(model.representation(batch), again.representation(batch))
    assert model.representation(batch).shape == (8, 3)


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
    vae = create_model("vae", observation_shape=SHAPE, latent_dim=4)
    beta1 = create_model("betavae", observation_shape=SHAPE, latent_dim=4, beta=1.0)
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
        ({"arch": "resnet"}, "arch must be one of conv64"),
    ],
)
def test_bad_model_options_are_one_line_user_errors(options, message):
    with pytest.raises(UntwineError, match=message):
        create_model("betavae", observation_shape=SHAPE, **options)


def test_conv64_refuses_other_image_sizes():
    with pytest.raises(UntwineError, match="needs 64x64"):
        create_model("vae", observation_shape=(3, 32, 32))
