"""Metrics on representations whose answer is known, invariances, and input checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from untwine import metrics
from untwine.data import GroundTruthDataset
from untwine.errors import UntwineError
from untwine.metrics.mig_chen import posterior_entropies

SIZES = (3, 6, 10, 8)
N = 3000


def _factors(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, N) for s in SIZES], axis=1)


def _identity(factors: np.ndarray, seed: int = 1) -> np.ndarray:
    """Codes = factors, scaled to [0, 1], plus tiny noise."""
    noise = np.random.default_rng(seed).normal(0, 1e-3, factors.shape)
    return factors / (np.array(SIZES) - 1) + noise


def _noise(seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(N, len(SIZES)))


# (metric key, value at least this for identity codes, at most this for noise codes)
EXPECTED = {
    "mig": (0.99, 0.05),
    "dci.disentanglement": (0.95, 0.1),
    "dci.completeness": (0.95, 0.1),
    "dci.informativeness_test": (0.99, 0.4),
    "sap": (0.2, 0.05),  # 1-d linear SVMs cannot separate many classes: ~0.25 is the top here
    "modularity": (0.99, 0.8),  # random codes sit near 0.69 by construction
    "explicitness": (0.99, 0.6),  # chance ROC-AUC is 0.5
    "irs": (0.95, 0.6),
    "mcc": (0.99, 0.1),
}


@pytest.fixture(scope="module")
def identity_and_noise():
    factors = _factors()
    return (
        metrics.score(_identity(factors), factors, metrics="all"),
        metrics.score(_noise(), factors, metrics="all"),
    )


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_identity_scores_high_and_noise_scores_low(identity_and_noise, key):
    identity, noise = identity_and_noise
    high, low = EXPECTED[key]
    assert identity[key] >= high
    assert noise[key] <= low


def test_unsupervised_scores_see_independence_and_dependence():
    independent = metrics.unsupervised(_noise())
    base = _noise()
    dependent = metrics.unsupervised(np.column_stack([base, base[:, 0] + 0.1 * base[:, 1]]))
    assert independent["gaussian_total_correlation"] < 0.01
    assert dependent["gaussian_total_correlation"] > 1.0
    assert dependent["mutual_info_score"] > independent["mutual_info_score"]


@pytest.mark.parametrize("name", ["mig", "dci", "modularity"])
def test_permuting_and_rescaling_codes_changes_nothing(name):
    factors = _factors()
    codes = _identity(factors) + np.random.default_rng(3).normal(0, 0.2, (N, len(SIZES)))
    codes = np.column_stack([codes, np.random.default_rng(4).normal(size=N)])
    order = [3, 0, 4, 2, 1]
    scale = np.array([2.0, 0.5, 10.0, 3.0, 0.1])
    before = metrics.score(codes, factors, metrics=name)
    after = metrics.score(codes[:, order] * scale + 5.0, factors, metrics=name)
    for key in before:
        assert after[key] == pytest.approx(before[key], abs=1e-9 if name != "dci" else 0.02)


def test_permuting_codes_leaves_sap_unchanged():
    """Not rescaling: the reference's LinearSVC(C=0.01) is regularised, so scale matters."""
    factors = _factors()
    codes = _identity(factors) + np.random.default_rng(3).normal(0, 0.2, (N, len(SIZES)))
    order = [3, 0, 2, 1]
    assert metrics.sap(codes[:, order], factors) == pytest.approx(metrics.sap(codes, factors))


def test_two_factors_in_one_code_lower_mig_and_dci_disentanglement():
    factors = _factors()
    clean = _identity(factors)
    mixed = clean.copy()
    mixed[:, 0] = clean[:, 0] + clean[:, 1]  # shape and scale share code 0
    mixed[:, 1] = np.random.default_rng(5).normal(size=N)
    a = metrics.score(clean, factors, metrics="mig,dci")
    b = metrics.score(mixed, factors, metrics="mig,dci")
    assert b["mig"] < a["mig"] - 0.1
    assert b["dci.disentanglement"] < a["dci.disentanglement"] - 0.1


def test_mig_per_factor_names_the_factor_a_code_lost_and_averages_to_mig():
    factors = np.column_stack([_factors(), np.zeros(N, int)])  # the last factor is constant
    codes = _identity(factors[:, :-1])
    codes[:, 1] = np.random.default_rng(5).normal(size=N)  # the second factor's code is noise
    gaps = metrics.mig_per_factor(codes, factors)
    assert gaps[1] < 0.05 and np.isnan(gaps[-1])
    assert np.delete(gaps, [1, len(gaps) - 1]).min() > 0.5
    assert np.nanmean(gaps) == pytest.approx(metrics.mig(codes, factors))


def test_score_reports_each_factors_mig_term_under_its_name():
    factors = np.column_stack([_factors(), np.zeros(N, int)])
    codes = _identity(factors[:, :-1])
    codes[:, 1] = np.random.default_rng(5).normal(size=N)
    names = ["shape", "scale", "hue", "x", "colour"]
    named = metrics.score(codes, factors, metrics="mig", factor_names=names)
    assert set(named) == {"mig", "mig.shape", "mig.scale", "mig.hue", "mig.x"}  # colour: constant
    assert named["mig.scale"] < 0.05 < named["mig.shape"]
    assert named["mig"] == pytest.approx(np.mean([named[f"mig.{n}"] for n in names[:4]]))
    unnamed = metrics.score(codes, factors, metrics="mig")
    assert unnamed["mig.factor_1"] == named["mig.scale"] and "mig.factor_4" not in unnamed
    with pytest.raises(UntwineError, match="2 factor names for 5 factors"):
        metrics.score(codes, factors, metrics="mig", factor_names=["a", "b"])
    with pytest.raises(UntwineError, match="factor names repeat"):
        metrics.score(codes, factors, metrics="mig", factor_names=["a", "b", "c", "a", "e"])


def test_constant_codes_are_handled_not_turned_into_nan():
    factors = _factors()
    codes = np.column_stack([_identity(factors), np.zeros(N)])
    result = metrics.score(codes, factors, metrics="all")
    assert all(np.isfinite(v) for v in result.values())
    assert result["unsupervised.constant_codes"] == 1
    assert result["irs.active_codes"] == len(SIZES)


def test_perfect_code_on_a_forty_valued_factor_shows_the_binning_limit():
    factors = np.random.default_rng(0).integers(0, 40, (N, 1))
    codes = np.column_stack([factors[:, 0] + 0.0, np.random.default_rng(1).normal(size=N)])
    # 20 bins cannot resolve 40 values: the gap is at most ln 20 / ln 40 = 0.81
    assert 0.75 < metrics.mig(codes, factors) <= np.log(20) / np.log(40)


def test_explicit_test_split_is_used_when_given():
    factors = _factors()
    codes = _identity(factors)
    given = metrics.score(codes[:2000], factors[:2000], codes[2000:], factors[2000:], metrics="sap")
    shuffled_test = metrics.score(
        codes[:2000], factors[:2000], codes[2000:], factors[2000:][::-1], metrics="sap"
    )
    assert given["sap"] > 0.2 and shuffled_test["sap"] < 0.05


@pytest.mark.parametrize(
    ("codes", "factors", "message"),
    [
        (np.zeros(5), np.zeros((5, 1), int), "codes must be a matrix"),
        (np.zeros((5, 2)), np.zeros((4, 1), int), "factors must be a matrix"),
        (np.full((5, 2), np.nan), np.zeros((5, 1), int), "finite"),
        (np.zeros((5, 2)), np.full((5, 1), 0.5), "integer factor indices"),
    ],
)
def test_bad_arrays_are_named(codes, factors, message):
    with pytest.raises(UntwineError, match=message):
        metrics.mig(codes, factors)


def test_reference_dci_scores_identity_high_and_noise_low():
    factors = _factors()
    identity = metrics.dci(_identity(factors), factors, estimator="reference")
    noise = metrics.dci(_noise(), factors, estimator="reference")
    assert identity["disentanglement"] > 0.95 and identity["informativeness_test"] > 0.99
    assert noise["disentanglement"] < 0.1 and noise["completeness"] < 0.1
    with pytest.raises(UntwineError, match="unknown DCI estimator 'xgb'"):
        metrics.dci(_noise(), factors, estimator="xgb")


def test_unknown_metric_names_are_refused():
    with pytest.raises(UntwineError, match="unknown metric 'migg'"):
        metrics.parse_metrics("mig,migg")


class _FactorsAsImages(GroundTruthDataset):
    """A tiny ground-truth dataset whose 'image' is its factor vector, so z = x is perfect."""

    factor_names = ("a", "b", "c")
    factor_sizes = (4, 5, 6)
    observation_shape = (1, 1, 3)

    def observations(self, indices):
        return self.index_to_factors(indices).astype(np.uint8).reshape(-1, 1, 3, 1)


def _perfect(images):
    return images.reshape(len(images), -1).astype(np.float64)


def _random(images):
    return np.random.default_rng(len(images)).normal(size=(len(images), 3))


@pytest.mark.parametrize("score", [metrics.beta_vae_score, metrics.factor_vae_score])
def test_sampled_scores_are_perfect_for_a_perfect_code_and_chance_for_noise(score):
    dataset = _FactorsAsImages()
    kwargs = {"num_train": 300, "num_eval": 200}
    perfect = score(dataset, _perfect, np.random.default_rng(0), **kwargs)
    noise = score(dataset, _random, np.random.default_rng(0), **kwargs)
    assert perfect["eval_accuracy"] >= 0.99
    assert noise["eval_accuracy"] < 0.6  # chance is 1/3


def test_factor_vae_score_with_no_active_code_is_zero():
    result = metrics.factor_vae_score(
        _FactorsAsImages(),
        lambda x: np.zeros((len(x), 3)),
        np.random.default_rng(0),
        num_train=10,
        num_eval=10,
    )
    assert result == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_codes": 0}


@settings(max_examples=25, deadline=None)
@given(
    order=st.permutations(range(5)),
    scale=st.lists(st.floats(0.01, 100), min_size=5, max_size=5),
    shift=st.lists(st.floats(-100, 100), min_size=5, max_size=5),
)
def test_histogram_metrics_are_invariant_to_affine_maps_of_each_code(order, scale, shift):
    """MIG, modularity and MCC read each code up to a positive affine map and its position.

    (IRS is not among them: it weights codes by their spread, as the reference does.)
    """
    factors = _factors()[:600]
    rng = np.random.default_rng(7)
    codes = np.column_stack(
        [_identity(factors)[:600] + rng.normal(0, 0.3, (600, 4)), rng.normal(size=600)]
    )
    moved = codes[:, list(order)] * np.array(scale) + np.array(shift)
    for metric in (metrics.mig, metrics.modularity, metrics.mcc):
        assert metric(moved, factors) == pytest.approx(metric(codes, factors), abs=1e-9)


def test_fast_dci_gives_the_same_scores_on_any_thread_count_and_restores_it():
    import numba

    factors = _factors()
    codes = _identity(factors)
    before = numba.get_num_threads()
    assert metrics.dci(codes, factors, n_jobs=1) == pytest.approx(
        metrics.dci(codes, factors), abs=1e-12
    )
    assert numba.get_num_threads() == before


def test_dci_and_sap_use_torchs_thread_count_by_default(monkeypatch):
    # a one-thread sweep worker must not score on every core beside the run still training
    import importlib

    import joblib
    import numba
    import torch

    sap_module = importlib.import_module("untwine.metrics.sap")
    asked = []
    monkeypatch.setattr(numba, "set_num_threads", lambda n: asked.append(n))
    real_parallel = joblib.Parallel
    monkeypatch.setattr(
        sap_module,
        "Parallel",
        lambda n_jobs, **kw: asked.append(n_jobs) or real_parallel(n_jobs=n_jobs, **kw),
    )
    factors = _factors()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics.dci(_identity(factors), factors)
        metrics.sap(_identity(factors), factors)
    finally:
        torch.set_num_threads(before)
    assert asked[0] == 1  # numba's threads for the fit (the second call restores them)
    assert asked[-1] == 1  # SAP's threads


def test_fast_dci_leaves_torchs_thread_count_as_it_found_it():
    # numba's OpenMP layer resets the process's thread count when it first starts, so a fresh
    # process: a one-thread benchmark worker that scores DCI must go on training on one thread.
    script = (
        "import numpy as np, torch; torch.set_num_threads(1)\n"
        "from untwine import metrics\n"
        "torch.randn(1000, 1000).exp().sum()\n"  # torch's OpenMP pool started, as in training
        "metrics.dci(np.random.rand(200, 3), np.random.randint(0, 3, (200, 2)))\n"
        "print(torch.get_num_threads())"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "1", result.stderr


def _posteriors(codes: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Codes as posterior means with one shared standard deviation."""
    return codes, np.full_like(codes, 2 * np.log(std))


def test_mig_chen_entropy_of_one_standard_normal_is_its_closed_form():
    mu, logvar = np.zeros((4000, 2)), np.zeros((4000, 2))
    entropy = posterior_entropies(mu, logvar, 4000, np.random.default_rng(0))
    assert entropy == pytest.approx([0.5 * np.log(2 * np.pi * np.e)] * 2, abs=0.03)


def test_mig_chen_of_two_separated_clusters_is_one_by_hand():
    # z_0 = ±1 with std 0.01 and the factor says which: H(z_0) - H(z_0 | v) = log 2 = H(v)
    factors = np.repeat([[0], [1]], 1000, axis=0)
    mu = np.column_stack([np.where(factors[:, 0] == 0, -1.0, 1.0), np.zeros(2000)])
    gaps = metrics.mig_chen_per_factor(*_posteriors(mu, 0.01), factors, samples=2000)
    assert gaps == pytest.approx([1.0], abs=0.03)


def test_mig_chen_is_near_one_for_identity_and_near_zero_for_noise():
    factors = _factors()
    identity = metrics.mig_chen(*_posteriors(_identity(factors), 0.01), factors, samples=1000)
    noise = metrics.mig_chen(*_posteriors(_noise(), 0.1), factors, samples=1000)
    assert identity > 0.95 and noise < 0.05


def test_mig_chen_leaves_constant_factors_out_and_refuses_mismatched_posteriors():
    factors = np.column_stack([_factors(), np.zeros(N, int)])
    mu, logvar = _posteriors(_identity(factors[:, :-1]), 0.01)
    gaps = metrics.mig_chen_per_factor(mu, logvar, factors, samples=500)
    assert np.isnan(gaps[-1]) and np.nanmean(gaps) == pytest.approx(
        metrics.mig_chen(mu, logvar, factors, samples=500)
    )
    with pytest.raises(UntwineError, match="logvar must have mu's shape"):
        metrics.mig_chen(mu, logvar[:, :2], factors)
    with pytest.raises(UntwineError, match="at least two latent dimensions"):
        metrics.mig_chen(mu[:, :1], logvar[:, :1], factors)
