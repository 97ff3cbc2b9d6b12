"""Evaluating runs and scoring arrays: through the CLI, as a user would, and from Python."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import untwine
from tests.conftest import run_cli, tiny_config
from tests.contract.metric_contract import FactorRows
from untwine import runs
from untwine.encoded import EncodedDataset, batch_size_for
from untwine.errors import UntwineWarning
from untwine.evaluate import code_table, evaluate, metrics_for
from untwine.metrics import METRICS, measure
from untwine.models import MODELS, create_model

CHEAP = "mig,sap,modularity,explicitness,irs,mcc,unsupervised,beta_vae,factor_vae"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return untwine.train(tiny_config(), tmp_path_factory.mktemp("eval") / "run", progress=False)


def test_evaluate_writes_flat_metrics_and_model_health(trained_run):
    result = run_cli(
        "evaluate", str(trained_run), "--metrics", CHEAP, "--samples", "60", "--device", "cpu"
    )
    saved = json.loads((trained_run / "metrics.json").read_text())
    for key in (
        "mig",
        "sap",
        "modularity",
        "explicitness",
        "irs",
        "mcc",
        "beta_vae",
        "factor_vae",
        "unsupervised.gaussian_total_correlation",
        "active_units",
        "kl_per_dim",
        "reconstruction",
        "elbo",
    ):
        assert key in saved, key
    assert saved["step"] == 20 and saved["samples"] == 60 and len(saved["kl_per_dim"]) == 4
    assert saved["elbo"] == pytest.approx(
        -(saved["reconstruction"] + sum(saved["kl_per_dim"])), rel=1e-5
    )
    assert "mig " in result.stdout and f"written: {trained_run / 'metrics.json'}" in result.stdout


def test_evaluate_is_reproducible_for_a_seed(trained_run):
    model, dataset = untwine.load_run(trained_run), untwine.load_dataset("dsprites")
    a = evaluate(model, dataset, metrics="mig,mcc", samples=50, seed=3)
    b = evaluate(model, dataset, metrics="mig,mcc", samples=50, seed=3)
    assert a == b


def test_score_reads_codes_and_factors_from_any_model(tmp_path):
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, (400, 3))
    codes = np.column_stack([factors + rng.normal(0, 0.01, factors.shape), rng.normal(size=400)])
    np.savez(tmp_path / "rep.npz", codes=codes, factors=factors)
    out = json.loads(run_cli("score", str(tmp_path / "rep.npz"), "--metrics", "mig,mcc").stdout)
    assert out["mig"] > 0.85 and out["mcc"] > 0.99  # 360 train rows: small-sample MI bias
    np.savez(
        tmp_path / "split.npz",
        codes=codes[:300],
        factors=factors[:300],
        codes_test=codes[300:],
        factors_test=factors[300:],
    )
    out = json.loads(run_cli("score", str(tmp_path / "split.npz"), "--metrics", "sap").stdout)
    assert set(out) == {"sap"}
    np.savez(tmp_path / "named.npz", codes=codes, factors=factors, factor_names=["a", "b", "c"])
    out = json.loads(run_cli("score", str(tmp_path / "named.npz"), "--metrics", "mig").stdout)
    assert set(out) == {"mig", "mig.a", "mig.b", "mig.c"} and min(out.values()) > 0.85


@pytest.mark.parametrize(
    ("arrays", "args", "message"),
    [
        ({"factors": np.zeros((5, 2))}, [], "has no 'codes' array"),
        ({"codes": np.zeros((5, 2))}, ["--metrics", "mig"], "'mig' needs ground-truth factors"),
        ({"codes": np.zeros((50, 2))}, ["--metrics", "tc_critic"], "needs at least 200 codes"),
        (
            {"codes": np.zeros((5, 2)), "factors": np.zeros((4, 1), int)},
            [],
            "factors must be a matrix",
        ),
        (
            {"codes": np.zeros((5, 2)), "factors": np.zeros((5, 1), int)},
            ["--metrics", "beta_vae"],
            "unknown metric 'beta_vae'",
        ),
        (
            {"codes": np.zeros((5, 2)), "factors": np.zeros((5, 2), int), "factor_names": [1, 2]},
            [],
            "factor_names must be a 1-d array of strings",
        ),
        (
            {"codes": np.zeros((50, 2)), "factors": np.zeros((50, 2), int), "factor_names": ["a"]},
            [],
            "1 factor names for 2 factors",
        ),
    ],
)
def test_score_input_mistakes_are_one_line_errors(tmp_path, arrays, args, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    result = run_cli("score", str(tmp_path / "bad.npz"), *args, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_score_of_a_missing_or_foreign_file_is_a_user_error(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    for path in (tmp_path / "missing.npz", tmp_path / "text.npz"):
        result = run_cli("score", str(path), check=False)
        assert result.returncode == 2 and "cannot read" in result.stderr


def test_training_logs_metrics_every_eval_step(tmp_path):
    config = tiny_config(
        **{"train.eval_every": 10, "train.eval_metrics": "mig,mcc", "train.eval_samples": 40}
    )
    run_dir = untwine.train(config, tmp_path / "run", progress=False)
    evals = [r for r in runs.read_log(run_dir) if "eval" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert {"mig", "mcc", "active_units", "kl_per_dim"} <= set(evals[0]["eval"])


def test_evaluation_during_training_does_not_change_the_weights(tmp_path):
    plain = untwine.train(tiny_config(), tmp_path / "a", progress=False)
    config = tiny_config(
        **{"train.eval_every": 5, "train.eval_metrics": "mcc", "train.eval_samples": 20}
    )
    scored = untwine.train(config, tmp_path / "b", progress=False)
    a = untwine.load_run(plain).state_dict()
    b = untwine.load_run(scored).state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_evaluate_reports_chen_mig_per_factor_without_moving_other_draws(trained_run):
    model, dataset = untwine.load_run(trained_run), untwine.load_dataset("dsprites")
    alone = evaluate(model, dataset, metrics="mig,mcc", samples=60)
    both = evaluate(model, dataset, metrics="mig,mcc,mig_chen", samples=60)
    assert {k: both[k] for k in alone} == alone
    terms = [both[f"mig_chen.{name}"] for name in dataset.factor_names]
    assert 0 <= both["mig_chen"] <= 1 and both["mig_chen"] == pytest.approx(np.mean(terms))


def test_chen_mig_is_left_out_of_all_and_refused_by_name_for_a_model_without_a_posterior(
    tmp_path, trained_run
):
    run = tmp_path / "gan"
    args = ["--model", "infogan", "--steps", "2", "--batch-size", "8", "--no-progress"]
    run_cli("train", *args, "--out", str(run), "model.continuous=2")
    model, dataset = untwine.load_run(run), untwine.load_dataset("dsprites")
    assert "mig_chen" not in metrics_for(dataset, "all", model)
    assert "mig_chen" in metrics_for(dataset, "all", untwine.load_run(trained_run))
    result = run_cli("evaluate", str(run), "--metrics", "mig_chen", check=False)
    assert result.returncode != 0 and "reads the posterior q(z|x)" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_reads_the_critic_tc_of_sampled_codes_without_moving_other_draws(trained_run):
    model, dataset = untwine.load_run(trained_run), untwine.load_dataset("dsprites")
    alone = evaluate(model, dataset, metrics="mig,mcc", samples=250)
    both = evaluate(model, dataset, metrics="mig,mcc,tc_critic", samples=250)
    assert {k: both[k] for k in alone} == alone
    assert np.isfinite(both["tc_critic"]) and both["tc_critic.dv_bound"] <= both["tc_critic"] + 1
    assert "tc_critic" not in evaluate(model, dataset, metrics="all", samples=60)
    with pytest.raises(untwine.UntwineError, match="'tc_critic' needs at least 200 codes"):
        evaluate(model, dataset, metrics="tc_critic", samples=60)


def _both_paths(model, dataset, metrics, samples, **options):
    """Scores read from a code table and scores encoded afresh, with the same seed."""
    cached = evaluate(model, dataset, metrics=metrics, samples=samples, **options)
    fresh = evaluate(model, dataset, metrics=metrics, samples=samples, code_table_mb=0, **options)
    return cached, fresh


def _assert_same_scores(cached, fresh):
    assert cached.keys() == fresh.keys()
    for key, value in fresh.items():
        assert cached[key] == pytest.approx(value, abs=1e-6, rel=0), key


def test_every_metric_scores_the_same_from_a_code_table_as_encoded_afresh(trained_run):
    model, dataset = untwine.load_run(trained_run), untwine.load_dataset("dsprites")
    assert isinstance(code_table(model, dataset), EncodedDataset)
    cached, fresh = _both_paths(model, dataset, ",".join(METRICS), samples=250, seed=4)
    assert {"beta_vae", "factor_vae", "mig_chen", "tc_critic", "dci.completeness"} <= cached.keys()
    _assert_same_scores(cached, fresh)


def test_a_user_dataset_and_a_model_without_a_posterior_score_the_same_from_a_code_table(
    tmp_path,
):
    rng = np.random.default_rng(0)
    factors = np.stack(
        [rng.integers(0, 4, 600), rng.integers(0, 5, 600), rng.uniform(0, 1, 600)], 1
    )
    np.savez(
        tmp_path / "rows.npz", images=factors + rng.normal(0, 0.01, factors.shape), factors=factors
    )
    rows = untwine.load_dataset("array", path=str(tmp_path / "rows.npz"), bins=4)
    vae = create_model("betavae", observation_shape=(3,), latent_dim=3, hidden=(16,))
    gan = create_model("infogan", observation_shape=(3,), **MODELS.get("infogan").example_options)
    for model in (vae, gan):
        cached, fresh = _both_paths(model, rows, "mig,dci,beta_vae,factor_vae", samples=120)
        _assert_same_scores(cached, fresh)


class _Grid(FactorRows):
    """The metric contract's factor rows on a 3 x 4 grid: fewer observations than a batch."""

    factor_names, factor_sizes, observation_shape = ("a", "b"), (3, 4), (2,)


class _BigGrid(_Grid):
    factor_sizes = (10, 11)


@pytest.mark.parametrize("grid", [_Grid, _BigGrid])
def test_a_code_table_encodes_each_drawn_observation_once_in_few_batch_sizes(grid):
    batches = []

    def encode(rows):
        batches.append(rows)
        return rows * 2.0

    table = EncodedDataset(grid(), encode, width=2)
    size = len(table)
    rng = np.random.default_rng(0)
    for _ in range(4):
        factors = table.sample_factors(5, rng)
        np.testing.assert_array_equal(table.observations_from_factors(factors, rng), 2 * factors)
    measure("mig,beta_vae,factor_vae", table, lambda rows: rows.astype(np.float64), samples=50)
    assert {len(batch) for batch in batches} <= {32, 64, 128, 256, 512}  # topped up or repeated
    once = np.concatenate([np.unique(batch, axis=0) for batch in batches])  # or repeated
    assert len(once) == len(np.unique(once, axis=0)) == table.encoded == size
    rows = table.observations(np.arange(size))
    np.testing.assert_array_equal(rows, 2 * grid().observations(np.arange(size)))


def test_new_rows_go_out_in_powers_of_two_from_32_or_whole_batches_of_512():
    sizes = {rows: batch_size_for(rows) for rows in (1, 12, 32, 33, 300, 512, 513, 1500)}
    assert sizes == {1: 32, 12: 32, 32: 32, 33: 64, 300: 512, 512: 512, 513: 1024, 1500: 1536}


class _NoisyGrid(_Grid):
    """The grid, with noise drawn afresh for each scored observation."""

    finite = False

    def observations_from_factors(self, factors, rng=None):
        return super().observations_from_factors(factors) + rng.normal(0, 0.1, factors.shape)


def test_evaluate_encodes_afresh_with_a_one_line_warning_where_no_code_table_can_stand_in():
    model = create_model("betavae", observation_shape=(2,), latent_dim=2, hidden=(8,))
    assert isinstance(code_table(model, _Grid()), EncodedDataset)
    assert "draws a nuisance anew" in code_table(model, _NoisyGrid())
    assert "takes 0.00019 MB, over the 0.0001 MB limit (--code-table-mb)" in code_table(
        model, _Grid(), limit_mb=1e-4
    )
    unsteady = create_model("betavae", observation_shape=(2,), latent_dim=2, hidden=(8,))
    unsteady.encode = lambda x: (torch.rand(len(x), 2), torch.zeros(len(x), 2))
    assert "encodes the same images differently" in code_table(unsteady, _Grid())
    with pytest.warns(UntwineWarning, match="codes are encoded afresh") as warned:
        noisy = evaluate(model, _NoisyGrid(), metrics="mig,factor_vae", samples=40)
    assert len(warned) == 1 and "\n" not in str(warned[0].message)
    assert noisy == evaluate(
        model, _NoisyGrid(), metrics="mig,factor_vae", samples=40, code_table_mb=0
    )
