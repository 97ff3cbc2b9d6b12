"""AnnealedVAE (Burgess et al. 2018): reconstruction + γ·|KL − C|, capacity C rising linearly."""

from __future__ import annotations

import torch

from untwine.errors import UntwineError
from untwine.models.base import MODELS, Posterior, VAEBase


@MODELS.register("annealedvae")
class AnnealedVAE(VAEBase):
    """Lets the KL grow to a target capacity, so factors enter the code one at a time."""

    def __init__(
        self,
        gamma: float = 1000.0,
        capacity_max: float = 25.0,
        # the study ramps over 100,000 of its 300,000 steps; a third of untwine's default 20,000
        capacity_steps: int = 6_667,
        **backbone,
    ) -> None:
        super().__init__(**backbone)
        if gamma < 0 or capacity_max < 0 or capacity_steps < 1:
            raise UntwineError(
                "model.gamma and model.capacity_max must be non-negative and "
                f"model.capacity_steps at least 1, got {gamma}, {capacity_max}, {capacity_steps}"
            )
        self.gamma, self.capacity_max, self.capacity_steps = gamma, capacity_max, capacity_steps

    def capacity(self, step: int) -> float:
        """C(step) = capacity_max * min(1, step / capacity_steps), in nats."""
        return self.capacity_max * min(1.0, step / self.capacity_steps)

    def schedule_shortfall(self, steps: int) -> str | None:
        """Says so when the capacity ramp would still be rising at the last step."""
        reached = self.capacity(steps)
        if reached >= self.capacity_max:
            return None
        return (
            f"model.capacity_steps={self.capacity_steps} outlasts train.steps={steps}: the "
            f"capacity reaches {reached:.3g} of {self.capacity_max:g} nats; set "
            "model.capacity_steps to about a third of train.steps (the study's ratio)"
        )

    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kl = posterior.kl_per_dim.sum()
        capacity = torch.tensor(self.capacity(step), device=kl.device)
        return self.gamma * (kl - capacity).abs(), {"capacity": capacity}
