"""What every registered model promises, built as training builds it (its registry example
options, the data's shape filled in) on a tiny batch of dSprites. `test_model_contract.py`
runs these over the registry; a model registered elsewhere is checked with the same functions."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import assert_gradient_reaches_only
from untwine.config import resolve_config
from untwine.data import load_dataset, to_tensor
from untwine.errors import UntwineError
from untwine.models import MODELS, create_model
from untwine.train import build


def built(name: str, workdir: Path):
    """The model `name` with its example options on dSprites, and a batch of 8 images."""
    dataset = load_dataset("dsprites")
    config = resolve_config({"model": {"name": name, **MODELS.example(name, workdir)}})
    _, model = build(config, dataset)
    batch = to_tensor(dataset.observations(np.arange(0, len(dataset), len(dataset) // 8)[:8]))
    return model, batch


def check_each_objective_steps_only_its_own_parameters(name: str, workdir: Path) -> None:
    """One training step's terms are finite; the objectives split the parameters between them,
    and each objective's loss reaches every parameter of its own and no other."""
    torch.manual_seed(0)
    model, batch = built(name, workdir)
    terms = model.loss(batch, step=0)
    objectives = model.objectives()
    assert all(torch.isfinite(terms[key]).all() for key in objectives), terms
    owned = [id(p) for spec in objectives.values() for p in spec["params"]]
    assert sorted(owned) == sorted(id(p) for p in model.parameters())  # each exactly once
    for key, spec in objectives.items():
        model.zero_grad(set_to_none=True)
        terms[key].backward(retain_graph=True)
        assert_gradient_reaches_only(model, spec["params"], key)


def check_saved_weights_and_config_rebuild_the_same_model(name: str, workdir: Path) -> None:
    """The config and safetensors weights give back a model with identical codes, one row per
    observation and `latent_dim` columns."""
    torch.manual_seed(0)
    model, batch = built(name, workdir)
    model.eval()
    save_file(model.state_dict(), workdir / "model.safetensors")
    again = create_model(**model.config)
    again.load_state_dict(load_file(workdir / "model.safetensors"))
    again.eval()
    codes = model.representation(batch)
    assert codes.shape == (len(batch), model.latent_dim) and torch.isfinite(codes).all()
    torch.testing.assert_close(again.representation(batch), codes)
    samples = model.sample(3, torch.Generator().manual_seed(0))
    assert samples.shape == (3, *model.observation_shape)


def check_bad_options_are_one_line_errors(name: str, workdir: Path) -> None:
    """An unknown option, and a word where an integer belongs, are each one line naming it."""
    example = MODELS.example(name, workdir)
    with pytest.raises(UntwineError, match="unknown option 'bogus'") as error:
        create_model(name, observation_shape=(1, 64, 64), **example, bogus=1)
    assert "\n" not in str(error.value)
    integers = [
        key
        for key, p in MODELS.options(name).items()
        if p.annotation is int and p.default != inspect.Parameter.empty
    ]
    with pytest.raises(UntwineError, match=f"{integers[0]} must be an integer") as error:
        create_model(name, observation_shape=(1, 64, 64), **{**example, integers[0]: "many"})
    assert "\n" not in str(error.value)


CHECKS = (
    check_each_objective_steps_only_its_own_parameters,
    check_saved_weights_and_config_rebuild_the_same_model,
    check_bad_options_are_one_line_errors,
)
