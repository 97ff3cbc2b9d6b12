"""Models: the abstract VAE and quantised autoencoder, one final class per method; InfoGAN
beside them."""

from untwine.models import (
    adagvae,
    adamlvae,
    annealedvae,
    betatcvae,
    betavae,
    dipvae,
    factorvae,
    infogan,
    infovae,
    qlae,
    tripod,
    vae,
)
from untwine.models.base import MODELS, Autoencoder, Model, Posterior, VAEBase, create_model
from untwine.models.quantized import QuantizedAE

__all__ = [
    "MODELS",
    "Autoencoder",
    "Model",
    "Posterior",
    "QuantizedAE",
    "VAEBase",
    "adagvae",
    "adamlvae",
    "annealedvae",
    "betatcvae",
    "betavae",
    "create_model",
    "dipvae",
    "factorvae",
    "infogan",
    "infovae",
    "qlae",
    "tripod",
    "vae",
]
