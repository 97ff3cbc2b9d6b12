"""Models: the abstract VAE and one final class per method; InfoGAN beside them."""

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
    vae,
)
from untwine.models.base import MODELS, Model, Posterior, VAEBase, create_model

__all__ = [
    "MODELS",
    "Model",
    "Posterior",
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
    "vae",
]
