"""Models: the abstract VAE and one final class per method."""

from untwine.models import betavae, vae
from untwine.models.base import MODELS, Posterior, VAEBase, create_model

__all__ = ["MODELS", "Posterior", "VAEBase", "betavae", "create_model", "vae"]
