"""InfoGAN (Chen et al. 2016): a GAN whose codes must stay readable from what it generates.

The generator G maps noise z and codes c to an observation; D and Q share a body. Both
players also minimise the information loss L_I = -E log Q(c | G(z, c)), a lower bound on
I(c; G(z, c)) up to the constant H(c) (eq. 5 of the paper): G so that its codes show, Q so
that it reads them. Q reads categorical codes as logits and continuous codes as a factorised
Gaussian (mean and log-variance).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from untwine.errors import UntwineError
from untwine.losses import gaussian_code_nll, gradient_penalty
from untwine.models.base import MODELS, ModelBase, frozen
from untwine.nn import build_backbone

FEATURES = 256  # width of the shared D/Q body's output
Q_LOGVAR_MIN, Q_LOGVAR_MAX = -6.0, 2.0  # Q's continuous-code log-variance, kept finite


@MODELS.register("infogan")
class InfoGAN(ModelBase):
    """G(z, c) against D; Q (sharing D's body) must recover the codes c from G's output.

    Codes: `categorical` (one code per listed size, uniform over its values) and `continuous`
    codes (uniform on [-1, 1] or standard Gaussian, `code_prior`), beside `noise_dim` noise
    dimensions. The representation of an observation is Q's continuous-code mean, then each
    categorical code's most likely value (0, 1, ...) as one extra dimension. G learns at
    `train.lr`; D and Q at `discriminator_lr` (Adam betas 0.5, 0.999 for both). Q's learned
    variance weighs the continuous information term by 1/var (up to e^6 as Q grows sure); with
    `fixed_code_std` the std is 1 and the weight is `lambda_cont` alone. The paper's Q is a factored
    Gaussian with nothing fixed, so learned is the default. Discriminator
    losses: `standard` (non-saturating), `hinge`, or `wgan-gp` (gradient penalty `gp_weight`).
    G is the `arch` decoder with batch norm before each ReLU, D's body the `arch` encoder with
    leaky ReLUs (without batch norm in G, G collapses to blank dSprites images).
    """

    # G's Adam rate and the DCGAN batch; 2e-4 drew dSprites by step 600 (with batch norm in G)
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 64}
    example_options: ClassVar[dict[str, Any]] = {  # tiny, for tests
        "arch": "mlp",
        "hidden": (32,),
        "noise_dim": 2,
        "continuous": 2,
        "categorical": (3,),
    }

    def __init__(
        self,
        observation_shape: tuple[int, ...],
        noise_dim: int = 5,
        continuous: int = 5,
        categorical: tuple[int, ...] = (),
        code_prior: Literal["uniform", "gaussian"] = "uniform",
        lambda_cont: float = 1.0,
        lambda_cat: float = 1.0,
        fixed_code_std: bool = False,
        discriminator_loss: Literal["standard", "hinge", "wgan-gp"] = "standard",
        gp_weight: float = 10.0,
        spectral_norm: bool = False,
        discriminator_lr: float = 2e-4,
        arch: Literal["conv64", "conv64-deep", "mlp"] = "conv64",
        hidden: tuple[int, ...] = (1200, 1200),
        output: Literal["sigmoid", "linear"] = "sigmoid",
    ) -> None:
        super().__init__()
        if noise_dim < 0 or continuous < 0 or any(k < 2 for k in categorical):
            raise UntwineError(
                "model.noise_dim and continuous must be >= 0 and each categorical size >= 2, "
                f"got {noise_dim}, {continuous}, {list(categorical)}"
            )
        if continuous + len(categorical) == 0:
            raise UntwineError("model.infogan needs at least one code: continuous or categorical")
        if min(lambda_cont, lambda_cat, gp_weight) < 0 or not discriminator_lr > 0:
            raise UntwineError(
                "model.lambda_cont, lambda_cat and gp_weight must be >= 0, discriminator_lr > 0"
            )
        self.observation_shape = tuple(observation_shape)
        self.noise_dim, self.continuous = noise_dim, continuous
        self.categorical = tuple(categorical)
        self.code_prior, self.output = code_prior, output
        self.lambda_cont, self.lambda_cat = lambda_cont, lambda_cat
        self.fixed_code_std = fixed_code_std
        self.discriminator_loss, self.gp_weight = discriminator_loss, gp_weight
        self.discriminator_lr = discriminator_lr
        self.latent_dim = continuous + len(self.categorical)  # the representation's size
        input_dim = noise_dim + sum(self.categorical) + continuous
        _, decoder = build_backbone(arch, self.observation_shape, input_dim, hidden)
        encoder, _ = build_backbone(arch, self.observation_shape, FEATURES // 2, hidden)
        # DCGAN's practice: batch norm before G's ReLUs, leaky ReLUs in D (no norm, so that
        # the gradient penalty stays per sample)
        self.generator = _with_batch_norm(decoder)
        self.body = nn.Sequential(_with_leaky_relu(encoder), nn.LeakyReLU(0.2))  # (B, FEATURES)
        self.d_head = nn.Linear(FEATURES, 1)
        self.q_head = nn.Sequential(
            nn.Linear(FEATURES, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, sum(self.categorical) + 2 * continuous),
        )
        if spectral_norm:
            for module in [*self.body.modules(), self.d_head]:
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.utils.parametrizations.spectral_norm(module)

    # --- codes -------------------------------------------------------------------------------

    def sample_inputs(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise (n, noise_dim), categorical codes (n, n_cat) as indices, continuous (n, n_cont)."""
        device = self.d_head.weight.device
        noise = torch.randn(n, self.noise_dim, generator=generator, device=device)
        cat = torch.zeros(n, len(self.categorical), dtype=torch.long, device=device)
        for i, k in enumerate(self.categorical):
            cat[:, i] = torch.randint(k, (n,), generator=generator, device=device)
        if self.code_prior == "uniform":
            cont = torch.rand(n, self.continuous, generator=generator, device=device) * 2 - 1
        else:
            cont = torch.randn(n, self.continuous, generator=generator, device=device)
        return noise, cat, cont

    def generate(self, noise: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        """G(z, c): observations (B, *observation_shape), in [0, 1] for the sigmoid output."""
        one_hots = [F.one_hot(cat[:, i], k).float() for i, k in enumerate(self.categorical)]
        out = self.generator(torch.cat([noise, *one_hots, cont], dim=1))
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    def read_codes(
        self, features: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Q's categorical logits (one (B, k) per code), continuous mean and log-variance (B, n).

        With `fixed_code_std` the log-variance is 0 (std 1) and Q's variance outputs go unused.
        """
        out = self.q_head(features)
        logits = list(out[:, : sum(self.categorical)].split(self.categorical, dim=1))
        mean, logvar = out[:, sum(self.categorical) :].chunk(2, dim=1)
        if self.fixed_code_std:
            return logits, mean, torch.zeros_like(logvar)
        return logits, mean, logvar.clamp(Q_LOGVAR_MIN, Q_LOGVAR_MAX)

    def information_loss(
        self, features: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L_I's two parts, each summed over codes and averaged over the batch: (cat, cont)."""
        logits, mean, logvar = self.read_codes(features)
        info_cat = sum(
            (F.cross_entropy(logit, cat[:, i]) for i, logit in enumerate(logits)),
            start=features.new_zeros(()),
        )
        info_cont = gaussian_code_nll(cont, mean, logvar)
        return info_cat, info_cont

    # --- the game ----------------------------------------------------------------------------

    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """G's `loss` and D/Q's `discriminator_loss`, plus the terms they are made of."""
        noise, cat, cont = self.sample_inputs(len(x))
        fake = self.generate(noise, cat, cont)
        d_real = self.d_head(self.body(x)).squeeze(1)
        # G's view: gradients reach G through D and Q, not into them
        with frozen(self.body, self.d_head, self.q_head):
            features = self.body(fake)
            d_fake_g = self.d_head(features).squeeze(1)
            info_cat_g, info_cont_g = self.information_loss(features, cat, cont)
        # D/Q's view: the same images, detached from G
        features = self.body(fake.detach())
        d_fake = self.d_head(features).squeeze(1)
        info_cat, info_cont = self.information_loss(features, cat, cont)

        generator_adv, discriminator_adv = self._adversarial(d_real, d_fake, d_fake_g)
        terms = {}
        if self.discriminator_loss == "wgan-gp":
            penalty = gradient_penalty(
                lambda v: self.d_head(self.body(v)).squeeze(1), x, fake.detach()
            )
            discriminator_adv = discriminator_adv + self.gp_weight * penalty
            terms["gradient_penalty"] = penalty
        info_g = self.lambda_cat * info_cat_g + self.lambda_cont * info_cont_g
        info_d = self.lambda_cat * info_cat + self.lambda_cont * info_cont
        return {
            "loss": generator_adv + info_g,
            "discriminator_loss": discriminator_adv + info_d,
            "generator_adv": generator_adv,
            "discriminator_adv": discriminator_adv,
            "info_cat": info_cat,
            "info_cont": info_cont,
            "code_error": (self.read_codes(features)[1] - cont).pow(2).mean().detach(),
            "d_real": d_real.mean().detach(),
            "d_fake": d_fake.mean().detach(),
            **terms,
        }

    def _adversarial(
        self, d_real: torch.Tensor, d_fake: torch.Tensor, d_fake_g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G's loss, D's loss) from D's logits or critic values, batch means."""
        if self.discriminator_loss == "standard":  # non-saturating: G maximises log D(G(z))
            return F.softplus(-d_fake_g).mean(), (F.softplus(-d_real) + F.softplus(d_fake)).mean()
        if self.discriminator_loss == "hinge":
            return -d_fake_g.mean(), (F.relu(1 - d_real) + F.relu(1 + d_fake)).mean()
        return -d_fake_g.mean(), (d_fake - d_real).mean()  # wgan-gp: the critic's estimate

    def objectives(self) -> dict[str, dict[str, Any]]:
        """G steps `loss` at train.lr; D and Q step `discriminator_loss` at discriminator_lr."""
        critic = [*self.body.parameters(), *self.d_head.parameters(), *self.q_head.parameters()]
        return {
            "loss": {
                "params": list(self.generator.parameters()),
                "options": {"betas": (0.5, 0.999)},
            },
            "discriminator_loss": {
                "params": critic,
                "options": {"lr": self.discriminator_lr, "betas": (0.5, 0.999)},
            },
        }

    # --- what the rest of untwine reads ------------------------------------------------------

    def needs_unit_interval(self) -> tuple[str, str] | None:
        """A sigmoid generator can only match data in [0, 1]."""
        if self.output == "sigmoid":
            return "infogan's sigmoid output", "model.output=linear"
        return None

    @torch.no_grad()
    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """Q's continuous-code means, then each categorical code's argmax: (B, latent_dim)."""
        logits, mean, _ = self.read_codes(self.body(x))
        return torch.cat([mean, *(logit.argmax(1, keepdim=True).float() for logit in logits)], 1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n observations generated from fresh noise and codes."""
        return self.generate(*self.sample_inputs(n, generator))

    @torch.no_grad()
    def code_recovery(self, n: int, generator: torch.Generator | None = None) -> dict[str, float]:
        """How well Q reads G's codes on n fresh samples: continuous MSE, categorical accuracy."""
        noise, cat, cont = self.sample_inputs(n, generator)
        logits, mean, _ = self.read_codes(self.body(self.generate(noise, cat, cont)))
        scores = {}
        if self.continuous:
            scores["code_mse"] = float((mean - cont).pow(2).mean())
        if self.categorical:
            hits = [(logit.argmax(1) == cat[:, i]).float().mean() for i, logit in enumerate(logits)]
            scores["code_accuracy"] = float(torch.stack(hits).mean())
        return scores

    @torch.no_grad()
    def traverse_codes(
        self, noise: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor, n_values: int = 11
    ) -> list[tuple[str, torch.Tensor]]:
        """Per code, a label and the observations as it sweeps, the rest held at one input.

        `noise`, `cat`, `cont` are one input's (1, ...) parts. A continuous code runs from -1
        to 1 (uniform prior) or -2 to 2 (Gaussian) in `n_values` steps; a categorical code
        takes each of its values.
        """
        limit = 1.0 if self.code_prior == "uniform" else 2.0
        rows = []
        for i in range(self.continuous):
            sweep = cont.repeat(n_values, 1)
            sweep[:, i] = torch.linspace(-limit, limit, n_values, device=cont.device)
            images = self.generate(noise.expand(n_values, -1), cat.expand(n_values, -1), sweep)
            rows.append((f"c{i}", images))
        for j, k in enumerate(self.categorical):
            values = cat.repeat(k, 1)
            values[:, j] = torch.arange(k, device=cat.device)
            images = self.generate(noise.expand(k, -1), values, cont.expand(k, -1))
            rows.append((f"c{self.continuous + j} cat", images))
        return rows


def _with_batch_norm(net: nn.Module) -> nn.Module:
    """A copy of `net` with batch norm inserted before every ReLU, sized to the layer before."""
    for name, child in net.named_children():
        if not isinstance(child, nn.Sequential):
            _with_batch_norm(child)
            continue
        layers: list[nn.Module] = []
        for layer in child:
            if isinstance(layer, nn.ReLU):
                previous = layers[-1]
                if isinstance(previous, nn.Unflatten):  # dense -> (C, H, W): norm the dense
                    layers.insert(-1, nn.BatchNorm1d(layers[-2].out_features))
                elif isinstance(previous, nn.Linear):
                    layers.append(nn.BatchNorm1d(previous.out_features))
                else:
                    layers.append(nn.BatchNorm2d(previous.out_channels))
            layers.append(layer)
        setattr(net, name, nn.Sequential(*layers))
    return net


def _with_leaky_relu(net: nn.Module, slope: float = 0.2) -> nn.Module:
    """`net` with each ReLU replaced by a leaky ReLU: D's gradients must reach G everywhere."""
    for name, child in net.named_children():
        if isinstance(child, nn.ReLU):
            setattr(net, name, nn.LeakyReLU(slope))
        else:
            _with_leaky_relu(child, slope)
    return net
