"""A study's own report: built from study.db, every section there, opens in a browser."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.test_report import CHROMIUM, _open_in_chromium
from untwine.sweep import load_study
from untwine.sweep.analysis import (
    Run,
    best_runs,
    rank_correlations,
    study_runs,
    udr_choices,
    variance_explained,
)
from untwine.sweep.report import _write_charts
from untwine.sweep.store import ResultStore

STUDY = """
name: tiny
base:
  model: {latent_dim: 3, hidden: [32]}
  train: {steps: 3, batch_size: 8, device: cpu}
grid:
  - {model.name: betavae, model.beta: [1, 4]}
  - {model.name: vae}
  - {model.name: vae, train.lr: 1.0e+30}
seeds: [0, 1]
evaluate: {metrics: "mig,dci", samples: 200}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    (folder / "tiny.yaml").write_text(STUDY)
    out = folder / "out"
    run_cli("sweep", str(folder / "tiny.yaml"), "--out", str(out), check=False)
    return out


def _run(name, model, setting, **metrics):
    return Run(name, model, setting, "done", metrics, None)


def test_variance_splits_into_model_setting_and_seed_by_hand():
    runs = [
        _run("a0", "a", "a x=1", mig=1.0),
        _run("a1", "a", "a x=1", mig=3.0),  # seed spread within a x=1: (1 - 2)^2 + (3 - 2)^2
        _run("a2", "a", "a x=2", mig=5.0),
        _run("b0", "b", "b", mig=7.0),
    ]
    shares = variance_explained(runs, "mig")
    grand = 4.0  # means: a 3, b 7; a x=1 2, a x=2 5
    total = sum((v - grand) ** 2 for v in (1, 3, 5, 7))
    assert shares["model"] == pytest.approx((3 * (3 - grand) ** 2 + (7 - grand) ** 2) / total)
    assert shares["setting"] == pytest.approx((2 * (2 - 3) ** 2 + (5 - 3) ** 2) / total)
    assert shares["seed"] == pytest.approx(2 / total)
    assert variance_explained(runs[:2], "mig") is None  # too few runs


def test_rank_correlations_and_udrs_choice_against_the_ranking_score():
    runs = [_run(f"r{i}", "m", "m", mig=i / 10, dci=-i, udr=(i == 6) * 1.0) for i in range(8)]
    matrix = rank_correlations(runs, ["mig", "dci"])
    np.testing.assert_allclose(matrix, [[1, -1], [-1, 1]])
    (choice,) = udr_choices(runs, "mig")
    assert choice["chosen"] == "r6" and choice["rank"] == 2 and choice["top"]  # 2 of 8: top 2


def test_the_study_report_holds_every_section(study):
    best_betavae, best_vae = best_runs(study_runs(study), "mig")
    assert (best_betavae.model, best_vae.model) == ("betavae", "vae")
    run_cli("report", str(study / "runs" / best_vae.name))  # the best VAE has a report
    done = run_cli("report", str(study))
    assert done.stdout.strip() == str(study / "report.html")
    page = (study / "report.html").read_text()
    for section in (
        "scores-over-seeds",
        "how-the-metrics-agree",
        "what-explains-each-score",
        "reconstruction-against-disentanglement",
        "the-best-run-of-each-model",
        "choosing-without-labels",
        "failed-runs",
    ):
        assert f'id="{section}"' in page, section
    assert "8 runs of 2 models: 6 done, 2 failed" in page
    assert f'href="runs/{best_vae.name}/report.html"' in page
    assert f"untwine report {study / 'runs' / best_betavae.name}</code>" in page  # it has none
    assert (study / "runs" / best_betavae.name / "figures" / "traversal.png").is_file()
    assert page.count('class="thumb"') == 2  # each best run's traversal, drawn if need be
    assert "vae-lr1e+30-s0" in page and "TrainingDiverged" in page
    assert "betavae beta=4.0" in page and "vae train.lr=1e+30" in page  # what sets it apart
    assert "top quarter by mig" in page
    for chart in ("scores", "agreement", "tradeoff"):  # the page's charts, as PNG files too
        with Image.open(study / "figures" / f"{chart}.png") as image:
            assert image.width > 300 and image.height > 200, chart


def test_a_chart_the_runs_no_longer_support_loses_its_file(tmp_path):
    _write_charts(tmp_path, scores=Image.new("RGB", (4, 4)), agreement=None)
    (tmp_path / "agreement.png").write_bytes(b"stale")
    written = _write_charts(tmp_path, scores=None, agreement=Image.new("RGB", (4, 4)))
    assert set(written) == {"agreement"} and not (tmp_path / "scores.png").exists()
    assert Image.open(tmp_path / "agreement.png").size == (4, 4)


def test_a_folder_that_is_neither_a_run_nor_a_study_is_one_line(tmp_path):
    result = run_cli("report", str(tmp_path), check=False)
    assert result.returncode == 2 and "is not an untwine run" in result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_the_study_report_opens_in_a_headless_browser_without_console_errors(study, tmp_path):
    run_cli("report", str(study))
    shot = tmp_path / "study.png"
    assert _open_in_chromium(study / "report.html", shot) == []


def test_dip_vae_i_and_ii_are_two_objectives_in_the_report(tmp_path):
    path = tmp_path / "dip.yaml"
    path.write_text(
        "grid: {model.name: dipvae, model.variant: [i, ii], model.lambda_od: [1, 10]}\n"
        "seeds: [0, 1]\nevaluate: {metrics: mig}\n"
    )
    study = load_study(path)
    store = ResultStore(tmp_path / "study.db")
    store.add(study.runs)
    for run in study.runs:  # the variant sets the score; the strength and seed barely move it
        options = run.config.model.options
        wobble = 0.01 * run.config.train.seed + 0.001 * options["lambda_od"]
        store.finish(run.name, {"mig": (0.1 if options["variant"] == "i" else 0.5) + wobble}, 1.0)
    store.close()
    runs = study_runs(tmp_path)
    assert {run.model for run in runs} == {"dipvae-i", "dipvae-ii"}
    assert variance_explained(runs, "mig")["model"] > 0.99
