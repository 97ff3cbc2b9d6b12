"""Models: the abstract VAE and one final class per method."""

from untwine.models import annealedvae, betatcvae, betavae, dipvae, factorvae, infovae, vae
from untwine.models.base import MODELS, Posterior, VAEBase, create_model

__all__ = [
    "MODELS",
    "Posterior",
    "VAEBase",
    "annealedvae",
    "betatcvae",
    "betavae",
    "create_model",
    "dipvae",
    "factorvae",
    "infovae",
    "vae",
]
