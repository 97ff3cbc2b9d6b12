"""The benchmarks: the quality study's runs, the shipped reference study, a parallel sweep
killed or interrupted (the quality study runs on it), and the rotation-preference and
position-angle calculations and the mean-code TC split against hand values."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import untwine
from tests.conftest import tiny_config
from untwine import runs
from untwine.data import load_dataset
from untwine.data.base import GroundTruthDataset
from untwine.models import MODELS, VAEBase
from untwine.sweep import load_study
from untwine.train import build

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def test_the_quality_study_trains_every_model_on_the_same_images():
    study = load_study(BENCHMARKS / "quality.yaml")
    assert len(study.runs) == len(MODELS.names()) * 3
    for run in study.runs:
        assert run.config.train.steps == 2_400_000 // run.config.train.batch_size
        posterior = issubclass(MODELS.get(run.config.model.name), VAEBase)
        assert ("mig_chen" in run.metrics.split(",")) == posterior, run.name


def _parallel_sweep_under_way(tmp_path: Path, **popen) -> tuple[subprocess.Popen, list[Path]]:
    """Two seeds training side by side, each past its first log line, a third waiting its turn;
    and the first two's logs."""
    study = tmp_path / "three.yaml"
    study.write_text(
        "base: {model: {latent_dim: 3, hidden: [64]}, train: {batch_size: 8, log_every: 100}}\n"
        "seeds: [0, 1, 2]\nimages: 16000\nevaluate: {metrics: mig, samples: 100}\n"
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "untwine", "sweep", str(study), "--out", str(out)]
    sweep = subprocess.Popen([*command, "--workers", "2"], **popen)
    logs = [out / "runs" / f"betavae-s{seed}" / "log.jsonl" for seed in (0, 1)]
    deadline = time.monotonic() + 300
    while not all(log.exists() and log.stat().st_size for log in logs):
        assert time.monotonic() < deadline and sweep.poll() is None
        time.sleep(0.5)
    return sweep, logs


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_killing_a_parallel_sweep_stops_its_workers_and_keeps_their_steps(tmp_path):
    parent, logs = _parallel_sweep_under_way(tmp_path)
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    parent.terminate()
    parent.wait()
    deadline = time.monotonic() + 60
    while any(_alive(int(pid)) for pid in children):
        assert time.monotonic() < deadline, "a worker outlived the sweep"
        time.sleep(0.5)
    for log in logs:
        assert runs.trained_steps(log.parent) >= 100  # saved at its step, past the first log


@pytest.mark.slow  # two more real process trees; the sweep's Ctrl-C tests cover one worker in CI
@pytest.mark.parametrize("send", [os.killpg, os.kill], ids=["terminal", "parent-alone"])
def test_ctrl_c_on_a_parallel_sweep_says_how_to_resume_keeps_the_steps_starts_no_more(
    tmp_path, send
):
    sweep, logs = _parallel_sweep_under_way(
        tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        send(sweep.pid, signal.SIGINT)  # killpg: as a terminal's Ctrl-C; kill: to it alone
        _, stderr = sweep.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # after a timeout, leave no training behind
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130 and "Traceback" not in stderr
    assert "run the same command again to resume the rest" in stderr.strip().splitlines()[-1]
    for log in logs:
        assert runs.trained_steps(log.parent) >= 100
    assert not (tmp_path / "out" / "runs" / "betavae-s2").exists()  # the queued run never started


def _load(script):
    import importlib.util

    spec = importlib.util.spec_from_file_location(script, BENCHMARKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rotation_of_a_uniform_square_moves_kl_between_tc_and_dimension_wise_kl():
    module = _load("rotation_preference")
    tc_axes, dwkl_axes = module.exact_terms(0.0, 0.01)
    tc_diagonal, dwkl_diagonal = module.exact_terms(np.pi / 4, 0.01)
    # by hand, unit variance: a flat marginal on [-√3, √3] has entropy log(2√3), the 45°
    # triangle on [-√6, √6] has 1/2 + log(√6); the joint's entropy is log(12) either way
    flat, triangle = np.log(2 * np.sqrt(3)), 0.5 + np.log(np.sqrt(6))
    gaussian = 0.5 * np.log(2 * np.pi * np.e)
    assert tc_axes == pytest.approx(0.0, abs=0.01)
    assert tc_diagonal == pytest.approx(2 * (triangle - flat), abs=0.015)
    assert dwkl_axes == pytest.approx(2 * (gaussian - flat), abs=0.015)
    assert tc_axes + dwkl_axes == pytest.approx(tc_diagonal + dwkl_diagonal, abs=0.01)


def test_the_batch_estimate_of_tc_sees_the_rotation():
    module = _load("rotation_preference")
    generator = torch.Generator().manual_seed(0)
    tc_axes, _ = module.estimated_terms(0.0, 0.1, 256, "mws", 20, generator)
    tc_diagonal, _ = module.estimated_terms(np.pi / 4, 0.1, 256, "mws", 20, generator)
    assert tc_diagonal > tc_axes + 0.1  # exact: +0.30; the estimate sees ~0.2


@pytest.mark.parametrize("degrees", [0, 30, 45, 80])
@pytest.mark.parametrize("signs", [(-1, -1), (1, -1)])
def test_position_angle_reads_the_turn_of_the_plane(degrees, signs):
    module = _load("position_angle")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 32, 4000), rng.integers(0, 32, 4000)
    theta = np.radians(degrees)
    plane = (
        np.stack([x - 15.5, y - 15.5], 1)
        / 9.2
        @ np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    )
    codes = np.zeros((4000, 6))
    codes[:, [4, 1]] = plane * signs  # flipped signs and any pair of latents read the same
    codes[:, [0, 2, 3, 5]] = 0.3 * rng.standard_normal((4000, 4))
    found = module.plane_angle(codes, x, y)
    assert sorted(found["latents"]) == [1, 4]
    assert found["angle"] == pytest.approx(min(degrees % 90, 90 - degrees % 90), abs=1.0)


def test_the_evaluate_benchmark_times_both_paths_and_finds_the_same_scores(tmp_path):
    run = untwine.train(tiny_config(), tmp_path / "run", progress=False)
    script = [sys.executable, str(BENCHMARKS / "evaluate.py"), "--run", str(run)]
    done = subprocess.run([*script, "--samples", "60"], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    cached, fresh = report["cached"], report["uncached"]
    assert report["same_keys"] and report["max_score_difference"]["difference"] == 0
    assert cached["observations"] == fresh["observations"] == 737_280
    assert report["speedup"] == pytest.approx(fresh["seconds"] / cached["seconds"], abs=0.01)
    assert cached["peak_mb"] > 0 and report["target_s"] == 90


class _FactorRows(GroundTruthDataset):
    """A 3 x 4 x 5 grid whose observations are its factor vectors."""

    factor_names, factor_sizes, observation_shape = ("a", "b", "c"), (3, 4, 5), (3,)

    def observations(self, indices):
        return self.index_to_factors(indices).astype(np.float32)


class _Reader:
    """Reads factor j into latent order[j], sharply; latent 3 is noise of the prior's width."""

    def __init__(self, order):
        self.order = order

    def encode(self, x):
        mu = torch.zeros(len(x), 4)
        mu[:, self.order] = x
        mu[:, 3] = torch.randn(len(x), generator=torch.Generator().manual_seed(len(x)))
        logvar = torch.full_like(mu, -6.0)
        logvar[:, 3] = 0.0
        return mu, logvar


def test_pair_selection_finds_the_one_latent_each_factor_moves():
    module = _load("pair_selection")
    report = module.selection_by_factor(_Reader([2, 0, 1]), _FactorRows(), 500, seed=0)
    assert {name: row["latent"] for name, row in report.items()} == {"a": 2, "b": 0, "c": 1}
    assert all(row["share"] == row["alone"] == 1.0 for row in report.values())
    assert all(row["unpooled"] == 1.0 for row in report.values())


def test_the_shipped_reference_study_is_the_studys_objectives_at_three_strengths_and_seeds():
    study = load_study(Path(__file__).parents[1] / "studies" / "reference.yaml")
    settings = {run.name.rsplit("-s", 1)[0] for run in study.runs}
    models = {run.config.model.name for run in study.runs}
    unsupervised = {"betavae", "annealedvae", "betatcvae", "factorvae", "dipvae"}
    assert models == unsupervised | {"adagvae", "adamlvae"}
    assert len(settings) == 24 and len(study.runs) == 72  # DIP-VAE I and II: 8 objectives x 3
    dataset = load_dataset("dsprites")
    for run in study.runs[::3]:  # one seed of each setting: its schedules end within its steps
        _, model = build(run.config, dataset)
        assert model.schedule_shortfall(run.config.train.steps) is None, run.name
    assert "udr" not in study.metrics and "irs" in study.metrics  # UDR comes per seed group
    assert {"unsupervised", "tc_critic", "fairness"} <= set(study.metrics.split(","))


def test_mig_gaps_name_a_factor_split_over_two_latents():
    module = _load("mig_gaps")
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, 4000), rng.integers(0, 32, 4000)], 1)
    clean = factors[:, 1] + 0.1 * rng.standard_normal(4000)  # position: one latent of its own
    split = factors[:, :1] @ np.ones((1, 2)) + rng.standard_normal((4000, 2))  # shape: two
    found = module.factor_gaps(np.column_stack([split, clean]), factors, ["shape", "position"])
    for bins in ("equal_width", "quantile"):
        shape, position = found[bins]["shape"], found[bins]["position"]
        assert sorted(shape["latents"]) == [0, 1] and shape["gap"] < 0.05 < shape["nmi"][1]
        assert position["latents"][0] == 2 and position["gap"] > 0.7
        assert found[bins]["mig"] == pytest.approx((shape["gap"] + position["gap"]) / 2, abs=1e-3)
    assert found["equal_width"]["position"]["nmi"][0] <= np.log(20) / np.log(32) + 0.01


def test_study_findings_read_bands_and_how_scores_follow_the_strength(tmp_path):
    from untwine.sweep.store import ResultStore

    module = _load("study_findings")
    path = tmp_path / "study.yaml"
    path.write_text(
        "grid:\n  - {model.name: betavae, model.beta: [1, 4, 16]}\n"
        "  - {model.name: annealedvae, model.capacity_max: [5, 25]}\n"
        "  - {model.name: adagvae}\n"
        "seeds: [0, 1]\nevaluate: {metrics: mig}\n"
    )
    study = load_study(path)
    store = ResultStore(tmp_path / "study.db")
    store.add(study.runs)
    for run in study.runs:  # sampled TC falls and mean-code TC rises with the strength
        options, seed = run.config.model.options, run.config.train.seed
        level = options["beta"] if "beta" in options else 100 / options["capacity_max"]
        weak = run.config.model.name == "adagvae"  # pairs lift its MIG above every seed's spread
        scores = {
            "mig": 0.1 * seed + (10.0 if weak else 0.0),
            "tc_critic": 1 / level,
            "unsupervised.gaussian_total_correlation": level,
        }
        store.finish(run.name, scores, 60.0)
    store.close()
    found = module.findings(tmp_path)
    assert found["runs_done"] == 12 and found["train_hours"] == pytest.approx(12 / 60, abs=0.01)
    assert found["settings"]["betavae beta=4.0"]["mig"] == {
        "mean": 0.05,
        "std": 0.0707,
        "min": 0.0,
        "max": 0.1,
        "runs": 2,
    }
    for model in ("betavae", "annealedvae"):  # capacity: a larger C regularises less
        tracked = found["strength_rank_correlation"][model]
        assert (
            tracked["tc_critic"] < -0.8 and tracked["unsupervised.gaussian_total_correlation"] > 0.8
        )
    assert found["variance_explained"]["mig"]["model"] > 0.99
    assert found["variance_explained_unsupervised"]["mig"]["seed"] == pytest.approx(1.0)
    crossed = found["rank_correlations_unsupervised"]["mig"]["tc_critic"]  # seed x strength
    assert abs(crossed) < 1e-9 < found["rank_correlations"]["mig"]["tc_critic"]
    assert found["mig_leaders_per_seed"].keys() == {"0", "1"}


def test_mean_code_tc_splits_a_passive_latents_dependence_from_the_active_ones():
    module = _load("mean_code_tc")
    rng = np.random.default_rng(0)
    a, b, noise = rng.standard_normal((3, 200_000))
    passive = 0.05 * (a + 0.3 * noise)  # a switched-off latent whose mean still follows a
    codes = np.stack([a, b, passive], axis=1)
    split = module.tc_split(codes, np.array([2.0, 1.5, 0.01]))
    assert (split["active"], split["passive"]) == (2, 1)
    assert abs(split["tc_active"]) < 1e-3 and split["tc_passive"] is None  # one column: no TC
    by_hand = -0.5 * np.log(1 - 1 / 1.09)  # -0.5 log(1 - rho^2), rho^2 = 1 / (1 + 0.3^2)
    assert split["tc_all"] == pytest.approx(by_hand, abs=0.01)
    assert split["tc_between_groups"] == pytest.approx(by_hand, abs=0.01)


def test_gradient_balance_scales_with_the_penalty_weight_as_the_formula_says():
    module = _load("gradient_balance")
    options = {"observation_shape": (1, 64, 64), "latent_dim": 4, "hidden": [16]}
    plain = untwine.models.create_model("betavae", beta=1.0, **options)
    heavy = untwine.models.create_model("betavae", beta=4.0, **options)
    annealed = untwine.models.create_model(
        "annealedvae", gamma=1000.0, capacity_max=1e6, capacity_steps=1, **options
    )
    heavy.load_state_dict(plain.state_dict())
    annealed.load_state_dict(plain.state_dict())
    x = torch.rand(8, 1, 64, 64).round()
    base = module.encoder_gradient_ratio(plain, x, seed=3)
    assert base > 0
    # β·KL sends β times the KL's gradient; γ·|KL - C| with C far above the KL sends γ times it
    assert module.encoder_gradient_ratio(heavy, x, seed=3) == pytest.approx(4 * base, rel=1e-4)
    ratio = module.encoder_gradient_ratio(annealed, x, seed=3)
    assert ratio == pytest.approx(1000 * base, rel=1e-4)


def test_snap_ratio_is_zero_on_the_values_and_one_for_codes_spread_over_their_cells():
    module = _load("quantized_codes")
    values = np.array([[-1.0, 0.0, 0.5, 2.0], [0.0, 1.0, 2.0, 3.0]])  # uneven cells, then even

    def ratios(codes):
        index = np.abs(codes[:, :, None] - values[None]).argmin(2)  # nearest value, by hand
        return module.snap_ratios(codes, values, index)

    rng = np.random.default_rng(0)
    on_values = np.stack([rng.choice(row, 5000) for row in values], 1)
    assert ratios(on_values) == pytest.approx([0, 0], abs=1e-12)
    # uniform over the span the cells cover (end cells mirrored): -1.5..2.75 and -0.5..3.5
    spread = np.stack([rng.uniform(-1.5, 2.75, 200_000), rng.uniform(-0.5, 3.5, 200_000)], 1)
    assert ratios(spread) == pytest.approx([1, 1], abs=0.02)
    # the even cell by hand: width 1, a value at its centre, E[(z - v)^2] = 1/12
    assert module.even_spread_sq_distance(values[1], np.array([1, 3])) == pytest.approx(
        [1 / 12, 1 / 12]
    )
    # codes on the even row's cell edges, halfway between values: 0.25 against 1/12
    edges = np.column_stack([np.zeros(3), [0.5, 1.5, 2.5]])
    assert ratios(edges)[1] == pytest.approx(3.0)


def test_quantized_codes_reads_a_trained_qlae(tmp_path):
    module = _load("quantized_codes")
    config = tiny_config(**{"model.name": "qlae", "model.latent_dim": 3, "model.hidden": "[32]"})
    run = untwine.train(config, tmp_path / "run", progress=False)
    found = module.describe(str(run), samples=200, seed=0)
    assert len(found["snap_ratio"]) == len(found["span"]) == len(found["values_used"]) == 3
    assert all(r >= 0 for r in found["snap_ratio"]) and all(s > 0 for s in found["span"])
    assert all(1 <= n <= 10 for n in found["values_used"])
