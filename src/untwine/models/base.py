"""The abstract VAE: encoder, decoder, ELBO. Each method adds one regulariser in its own file."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.losses import kl_normal, reconstruction
from untwine.nn import build_backbone
from untwine.registry import Registry

MODELS = Registry("model", section="model")
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active when Var_x(E[z|x]) > 0.01


@runtime_checkable
class Model(Protocol):
    """What the trainer, evaluation and figures read from any model, VAE or GAN.

    `loss(x, step)` returns every objective named by `objectives()` (and terms to log);
    `representation(x)` is the code the metrics score, (B, latent_dim); `sample(n)` draws
    observations from the model. A VAE adds `encode`/`decode`; InfoGAN adds `generate`.
    `pair_k` is None for a model of single observations; a pair model (`pairs.py`) trains on
    batches of P observations then their P partners, drawn to differ in `pair_k` factors.
    """

    config: dict[str, Any]
    observation_shape: tuple[int, ...]
    latent_dim: int
    pair_k: int | None

    def objectives(self) -> dict[str, dict[str, Any]]: ...
    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]: ...
    def check_data(self, x: torch.Tensor) -> None: ...
    def schedule_shortfall(self, steps: int) -> str | None: ...
    def representation(self, x: torch.Tensor) -> torch.Tensor: ...
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Record a forward pass without the modules' weights, so its backward skips their grads.

    For a player's loss that goes through the other player (G's through D, a VAE's TC through
    its discriminator): only the input's gradient is needed, and the weights' would be thrown
    away by the other player's optimiser anyway.
    """
    weights = [p for module in modules for p in module.parameters() if p.requires_grad]
    for weight in weights:
        weight.requires_grad_(False)
    try:
        yield
    finally:
        for weight in weights:
            weight.requires_grad_(True)


@dataclass(frozen=True)
class Posterior:
    """One batch's Gaussian posterior q(z|x) and a sample from it."""

    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (B, D)
    kl_per_dim: torch.Tensor  # (D,) KL to N(0, I), mean over batch


class ModelBase(nn.Module):
    """What every model shares with the trainer: refusing data its output cannot reach, and
    (by default) no weight schedule to outlast."""

    pair_k: int | None = None  # single observations, unless a pair model says otherwise

    def needs_unit_interval(self) -> tuple[str, str] | None:
        """(what needs data in [0, 1], the option that lifts it); None: any values will do."""
        return None

    def check_data(self, x: torch.Tensor) -> None:
        """Refuse a first batch outside [0, 1] when the output cannot leave it."""
        needs = self.needs_unit_interval()
        if needs and (x.min() < 0 or x.max() > 1):
            what, fix = needs
            raise UntwineError(
                f"{what} needs data in [0, 1], got values in "
                f"[{x.min().item():.3g}, {x.max().item():.3g}]; use {fix}"
            )

    def schedule_shortfall(self, steps: int) -> str | None:
        """What a weight schedule would leave unreached after `steps` steps; None: nothing."""
        return None


class Autoencoder(ModelBase):
    """An encoder and a decoder with a likelihood p(x|z): what a VAE and a quantised
    autoencoder share. `VAEBase` and `QuantizedAE` say what the code between them is."""

    config: dict[str, Any]
    example_options: ClassVar[dict[str, Any]] = {"latent_dim": 3, "hidden": (32,)}  # for tests
    outputs_per_latent: ClassVar[int] = 1  # encoder outputs per latent (a VAE's: mean, log-var)
    # the dtype of the networks' matrix products while training (train.precision); see run_network
    train_dtype: torch.dtype = torch.float32

    def __init__(
        self,
        observation_shape: tuple[int, ...],
        latent_dim: int = 10,
        # at the trainer's batches of 256 and lr 1e-3, the MLP beat the study's convnet (batches
        # of 64, lr 1e-4) on every disentanglement score of each model compared on two CPU cores
        # (docs/quality.md)
        arch: Literal["conv64", "conv64-deep", "conv64-style", "mlp"] = "mlp",
        hidden: tuple[int, ...] = (1200, 1200),
        likelihood: Literal["bernoulli", "gaussian", "laplace"] = "bernoulli",
        likelihood_scale: float = 1.0,
        learn_scale: bool = False,
        activation: Literal["relu", "gelu"] = "relu",
    ) -> None:
        super().__init__()
        if len(observation_shape) == 0 or min(observation_shape) < 1:
            raise UntwineError(
                f"model.observation_shape must be positive sizes, e.g. (C, H, W) or (features,), "
                f"got {observation_shape}"
            )
        if latent_dim < 1:
            raise UntwineError(f"model.latent_dim must be at least 1, got {latent_dim}")
        if not likelihood_scale > 0:
            raise UntwineError(f"model.likelihood_scale must be positive, got {likelihood_scale}")
        self.observation_shape = tuple(observation_shape)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.encoder, self.decoder = build_backbone(
            arch, self.observation_shape, latent_dim, hidden, self.outputs_per_latent, activation
        )
        # log std (gaussian) or log scale (laplace) of p(x|z), shared by all pixels
        log_scale = torch.tensor(math.log(likelihood_scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def run_network(self, network: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`network(x)` in float32. While training under `train_dtype` bfloat16 its matrix
        products run in bfloat16; the weights, the optimiser and every loss term stay float32,
        and evaluation always runs in float32."""
        if not self.training or self.train_dtype == torch.float32:
            return network(x)
        with torch.autocast(x.device.type, dtype=self.train_dtype):
            return network(x).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output for latents (B, D): logits for Bernoulli, means otherwise."""
        return self.run_network(self.decoder, z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """The expected observation E[x|z], (B, C, H, W)."""
        output = self.decode(z)
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) for a decoder output: sum over pixels, mean over batch."""
        return reconstruction(output, x, self.likelihood, self.log_scale)

    def needs_unit_interval(self) -> tuple[str, str] | None:
        """A Bernoulli likelihood models values in [0, 1] only."""
        if self.likelihood == "bernoulli":
            return "the bernoulli likelihood", "model.likelihood=gaussian"
        return None


class VAEBase(Autoencoder, ABC):
    """Gaussian posterior, N(0, I) prior; the loss is reconstruction + `regularizer(...)`.

    Subclasses are final and override `regularizer` only, returning the penalty that replaces
    the plain KL term and the named terms to log.
    """

    outputs_per_latent = 2

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (B, D), for images (B, C, H, W) in [0, 1]."""
        mu, logvar = self.run_network(self.encoder, x).chunk(2, dim=1)
        # exp(±logvar) appears in every density: keep it inside float32's range
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def objectives(self) -> dict[str, dict[str, Any]]:
        """The loss keys to minimise, in order, each with its parameters and optimiser options.

        A plain VAE minimises `loss` over every parameter. A model with a second player (a
        discriminator) adds its own key, parameters and Adam options; the trainer steps each.
        """
        return {"loss": {"params": list(self.parameters())}}

    @torch.no_grad()
    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (B, D): what metrics and traversals read."""
        return self.encode(x)[0]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n observations decoded (as their means) from z drawn from the prior N(0, I)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.log_scale.device)
        return self.mean_image(z)

    def posterior_parameters(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Mean and log-variance of the q(z|x) the loss samples from, and terms to log: the
        encoder's own, unless a model pools observations (`pairs.py`)."""
        return *self.encode(x), {}

    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """`loss` to minimise plus every named term; scalars, except `kl_per_dim` (D,)."""
        mu, logvar, pooling = self.posterior_parameters(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        recon = self.nll(self.decode(z), x)
        kl_per_dim = kl_normal(mu, logvar).mean(0)  # (D,)
        penalty, terms = self.regularizer(Posterior(mu, logvar, z, kl_per_dim), step)
        return {
            "loss": recon + penalty,
            "recon": recon,
            "kl": kl_per_dim.sum(),
            **pooling,
            **terms,
            # posterior-collapse monitor: units whose mean varies over the batch
            "active_units": (mu.detach().var(0) > ACTIVE_UNIT_THRESHOLD).sum().float(),
            "kl_per_dim": kl_per_dim,
        }

    @abstractmethod
    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The term added to the reconstruction loss, and any extra named terms to log."""


def create_model(name: str, **options: Any) -> Model:
    """Build a registered model, e.g. `create_model("betavae", observation_shape=(1, 64, 64))`."""
    params = MODELS.resolve(name, options)
    missing = [key for key in MODELS.options(name) if key not in params]
    if missing:
        raise UntwineError(f"model.{missing[0]} is required (training sets it from the dataset)")
    model = MODELS.get(name)(**params)
    model.config = {"name": name, **params}
    return model
