"""A metric, a model or a dataset registered in one place, here a test module, reaches every
consumer (evaluation, the report, the listings, training, the contract checks) with no other
file touched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import untwine
from tests.conftest import tiny_config
from tests.contract import dataset_contract, model_contract
from tests.contract.metric_contract import CHECKS
from untwine import runs
from untwine.cli import cli
from untwine.data import DATASETS, GroundTruthDataset
from untwine.metrics import METRICS, Inputs, Metric
from untwine.models import MODELS, Posterior, VAEBase


def best_correlation(inputs: Inputs) -> dict[str, float]:
    """Per factor, the largest |correlation| with any latent; their mean."""
    d = inputs.codes.shape[1]
    corr = np.nan_to_num(np.corrcoef(inputs.codes.T, inputs.factors.T)[:d, d:])
    return {"toy": float(np.abs(corr).max(axis=0).mean())}


TOY = Metric(
    name="toy",
    kind="codes",
    compute=best_correlation,
    meanings={"toy": "Toy: per factor, the best |correlation| with one latent, averaged."},
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(METRICS, TOY.name, TOY)
    return TOY


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_a_registered_metric_is_held_to_the_contract(toy, check):
    check(toy)


def test_a_registered_metric_is_evaluated_reported_and_listed(toy, tmp_path):
    run = untwine.train(tiny_config(), tmp_path / "run", progress=False)
    assert "toy" in untwine.evaluate.evaluate(run, metrics="toy,mig", samples=60)
    assert json.loads((run / runs.METRICS).read_text())["toy"] >= 0
    page = untwine.report(run).read_text()
    assert "<code>toy</code>" in page and "best |correlation| with one latent" in page
    listing = CliRunner().invoke(cli, ["metrics"])
    assert listing.exit_code == 0
    assert "toy: reads the codes; needs factors; toy: higher is better" in listing.output


class HalfKL(VAEBase):
    """Toy: the ELBO with half the KL."""

    def regularizer(self, posterior: Posterior, step: int):
        return 0.5 * posterior.kl_per_dim.sum(), {}


@pytest.fixture
def toy_model(monkeypatch):
    monkeypatch.setitem(MODELS._entries, "halfkl", HalfKL)
    return "halfkl"


@pytest.mark.parametrize(
    "check", model_contract.CHECKS, ids=lambda check: check.__name__.removeprefix("check_")
)
def test_a_registered_model_is_held_to_the_contract(toy_model, check, tmp_path):
    check(toy_model, tmp_path)


def test_a_registered_model_is_listed_and_trains(toy_model, tmp_path):
    listing = CliRunner().invoke(cli, ["models"])
    assert "halfkl: Toy: the ELBO with half the KL." in listing.output
    run = untwine.train(tiny_config(**{"model.name": toy_model}), tmp_path / "run", progress=False)
    assert untwine.load_run(run).config["name"] == "halfkl"


class Crosshair(GroundTruthDataset):
    """Toy: 8 x 8 images of one lit column and one lit row."""

    factor_names = ("column", "row")
    factor_sizes = (8, 8)
    observation_shape = (1, 8, 8)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        factors = self.index_to_factors(indices)
        images = np.zeros((len(factors), 8, 8, 1), np.uint8)
        images[np.arange(len(factors)), :, factors[:, 0]] = 255
        images[np.arange(len(factors)), factors[:, 1], :] = 255
        return images


@pytest.fixture
def toy_dataset(monkeypatch):
    monkeypatch.setitem(DATASETS._entries, "crosshair", Crosshair)
    return "crosshair"


@pytest.mark.parametrize(
    "check", dataset_contract.CHECKS, ids=lambda check: check.__name__.removeprefix("check_")
)
def test_a_registered_dataset_is_held_to_the_contract(toy_dataset, check, tmp_path):
    check(toy_dataset, tmp_path)


def test_a_registered_dataset_is_listed_trained_on_and_scored(toy_dataset, tmp_path):
    listing = CliRunner().invoke(cli, ["datasets"])
    assert "crosshair: Toy: 8 x 8 images of one lit column and one lit row." in listing.output
    assert "image 1x8x8; factors: column 8, row 8" in listing.output
    run = untwine.train(tiny_config(**{"data.name": toy_dataset}), tmp_path / "run", progress=False)
    scores = untwine.evaluate.evaluate(run, metrics="mig,factor_vae", samples=100)
    assert 0 <= scores["mig"] <= 1 and {"mig.column", "mig.row"} <= set(scores)
