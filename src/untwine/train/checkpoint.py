"""What a checkpoint holds and how training state is restored from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from untwine import runs
from untwine.models import Model

Optimizers = dict[str, torch.optim.Optimizer]


def capture(
    step: int, model: Model, optimizers: Optimizers, sampler: torch.Generator
) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, optimisers, both RNG streams, step."""
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizers": {key: opt.state_dict() for key, opt in optimizers.items()},
        "sampler_rng": sampler.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore(
    state: dict[str, Any],
    run_dir: Path,
    model: Model,
    optimizers: Optimizers,
    sampler: torch.Generator,
) -> int:
    """Load a captured state into live objects; returns the step to continue from."""
    try:
        model.load_state_dict(state["model"])
        for key, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        sampler.set_state(state["sampler_rng"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        step = int(state["step"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise runs.damaged(
            run_dir / runs.STATE,
            f"it does not fit this run's model: {runs.misfit(error)}",
            runs.CANNOT_RESUME,
        ) from None
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    return step


def save(run_dir: Path, state: dict[str, Any], model: Model) -> None:
    """Write the trainer state, then the deliverable weights; each write is atomic."""
    runs.save_state(run_dir, state)
    runs.save_weights(run_dir, model, state["step"])
