"""What every registered dataset promises, loaded with its registry example options (tiny files
written into a scratch folder where it reads files). `test_dataset_contract.py` runs these over
the registry; a dataset registered elsewhere is checked with the same functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from untwine.data import DATASETS, Dataset
from untwine.errors import UntwineError


def loaded(name: str, workdir: Path) -> tuple[Dataset, np.ndarray]:
    """The dataset with its example options, and a few indices spread over it."""
    dataset = DATASETS.create(name, **DATASETS.example(name, workdir))
    n = len(dataset)
    return dataset, np.array([0, n - 1, n // 2, n // 3, 1 % n, n // 2])


def check_observations_have_the_declared_shape_and_type(name: str, workdir: Path) -> None:
    """Images are uint8 (n, H, W, C) for a (C, H, W) shape, rows float32 (n, F) for (F,); the
    same index gives the same observation."""
    dataset, indices = loaded(name, workdir)
    observations = dataset.observations(indices)
    if len(dataset.observation_shape) == 3:
        channels, height, width = dataset.observation_shape
        assert observations.shape == (len(indices), height, width, channels)
        assert observations.dtype == np.uint8
    else:
        assert observations.shape == (len(indices), *dataset.observation_shape)
        assert observations.dtype == np.float32
    np.testing.assert_array_equal(dataset.observations(indices), observations)
    np.testing.assert_array_equal(observations[2], observations[5])  # index n // 2 twice


def _factored(name: str, workdir: Path) -> tuple[Dataset, np.ndarray]:
    dataset, indices = loaded(name, workdir)
    if not dataset.factor_names:
        pytest.skip(f"{name} has no factors with these options")
    return dataset, indices


def check_factors_round_trip(name: str, workdir: Path) -> None:
    """Factor indices of observations lie in their ranges, and a grid's flat index comes back;
    sampled factors lie in range and render to observations of the declared shape."""
    dataset, indices = _factored(name, workdir)
    sizes = np.array(dataset.factor_sizes)
    factors = dataset.index_to_factors(indices)
    assert factors.shape == (len(indices), len(dataset.factor_names))
    assert ((factors >= 0) & (factors < sizes)).all()
    if hasattr(dataset, "factors_to_index"):
        np.testing.assert_array_equal(dataset.factors_to_index(factors), indices)
    rng = np.random.default_rng(0)
    drawn = dataset.sample_factors(50, rng)
    assert drawn.shape == (50, len(sizes)) and ((drawn >= 0) & (drawn < sizes)).all()
    rendered = dataset.observations_from_factors(drawn[:4], rng)
    assert rendered.shape == dataset.observations(indices[:4]).shape


def check_a_finite_dataset_scores_observations_it_indexes(name: str, workdir: Path) -> None:
    """Where `finite`, the observation drawn for a factor vector is the one at the index drawn,
    with the same draws from the generator (so a code table can stand in for the encoder), and
    that index has those factors."""
    dataset, _ = _factored(name, workdir)
    if not dataset.finite:
        pytest.skip(f"{name} draws a nuisance afresh when scored")
    factors = dataset.sample_factors(40, np.random.default_rng(2))
    by_index, by_factor = np.random.default_rng(3), np.random.default_rng(3)
    indices = dataset.indices_from_factors(factors, by_index)
    images = dataset.observations_from_factors(factors, by_factor)
    np.testing.assert_array_equal(dataset.observations(indices), images)
    np.testing.assert_array_equal(dataset.index_to_factors(indices), factors)
    assert by_index.random() == by_factor.random()  # both drew the same amount


def check_fixing_a_factor_keeps_it_fixed(name: str, workdir: Path) -> None:
    """Resampling that shares factor k keeps k, row by row, and draws the rest in range."""
    dataset, _ = _factored(name, workdir)
    rng = np.random.default_rng(1)
    factors = dataset.sample_factors(60, rng)
    fixed = rng.integers(len(dataset.factor_sizes), size=60)
    fresh = dataset.resample_sharing(factors, fixed, rng)
    rows = np.arange(60)
    np.testing.assert_array_equal(fresh[rows, fixed], factors[rows, fixed])
    assert ((fresh >= 0) & (fresh < np.array(dataset.factor_sizes))).all()


def check_bad_options_are_one_line_errors(name: str, workdir: Path) -> None:
    """An unknown option is one line naming it and what is accepted."""
    example = DATASETS.example(name, workdir)
    with pytest.raises(UntwineError, match=f"unknown option 'bogus' for dataset '{name}'") as error:
        DATASETS.create(name, **example, bogus=1)
    assert "\n" not in str(error.value)


CHECKS = (
    check_observations_have_the_declared_shape_and_type,
    check_factors_round_trip,
    check_a_finite_dataset_scores_observations_it_indexes,
    check_fixing_a_factor_keeps_it_fixed,
    check_bad_options_are_one_line_errors,
)
