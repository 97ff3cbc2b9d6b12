"""Figures and the HTML report: sizes and layouts, knob names, health warnings, a real browser."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import untwine
from tests.conftest import tiny_config
from untwine import runs
from untwine.data import load_dataset
from untwine.metrics import normalized_mutual_info
from untwine.report import REPORT, health_warnings, report, write_figures
from untwine.viz.charts import information_bars, training_curves
from untwine.viz.grid import GAP
from untwine.viz.knobs import knob_names
from untwine.viz.traversal import traversal_gifs, traversal_grid

from .conftest import run_cli

SECTIONS = (
    "health",
    "metrics",
    "latent-traversals",
    "what-each-latent-captures",
    "reconstructions-and-samples",
    "information-per-latent",
    "training-curves",
    "data",
    "config",
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 4-latent β-VAE trained for 20 steps on dSprites, scored with MIG."""
    run = tmp_path_factory.mktemp("run") / "tiny"
    untwine.train(tiny_config(), run, progress=False)
    untwine.evaluate.evaluate(run, metrics="mig", samples=200)
    return run


def test_knob_names_match_a_planted_representation():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 8, size=(3000, 2))
    codes = np.column_stack(
        [
            factors[:, 1] + rng.normal(0, 0.1, 3000),
            rng.normal(size=3000),
            factors[:, 0] + rng.normal(0, 0.1, 3000),
        ]
    )
    knobs = knob_names(normalized_mutual_info(codes, factors), ("colour", "size"))
    assert [k.factor for k in knobs] == ["size", None, "colour"]
    assert knobs[0].score > 0.9 and knobs[1].score < 0.05
    assert str(knobs[2]) == "latent 2 = colour, 1.00"
    assert str(knobs[1]).startswith("latent 1 = -")


def test_the_traversal_has_a_row_per_latent_and_the_factor_sweep_beside_it(tiny_run):
    model, dataset = runs.load_run(tiny_run), load_dataset("dsprites")
    plain = traversal_grid(model, dataset, n_values=5)
    assert plain.height == 4 * (64 + GAP) + GAP
    knobs = knob_names(np.eye(4, 5), dataset.factor_names)
    named = traversal_grid(model, dataset, n_values=5, knobs=knobs)
    assert named.height == plain.height
    # a gap cell and the five-value sweep, and labels widened for the factor names
    label_growth = named.width - plain.width - 6 * (64 + GAP)
    assert label_growth == 6 * (len("orientation 1.00") - len("z0  KL 0.00"))  # 6 px a letter


def test_traversal_gifs_sweep_there_and_back_for_the_grid_and_each_latent(tiny_run):
    gifs = traversal_gifs(runs.load_run(tiny_run), load_dataset("dsprites"), seeds=2, n_values=5)
    assert sorted(gifs) == [
        "traversal-z0.gif",
        "traversal-z1.gif",
        "traversal-z2.gif",
        "traversal-z3.gif",
        "traversal.gif",
    ]
    grid = Image.open(io.BytesIO(gifs["traversal.gif"]))
    assert grid.n_frames == 8 and grid.height == 4 * (64 + GAP) + GAP
    one = Image.open(io.BytesIO(gifs["traversal-z0.gif"]))
    assert one.height == 64 + 2 * GAP


def test_information_bars_and_curves_are_charts_of_sensible_size(tiny_run):
    assert information_bars(np.array([2.0, 0.0, 0.5, 0.01])).size[0] > 200
    curves = training_curves(runs.read_log(tiny_run))
    assert curves.size[0] > 600 and curves.size[1] > 400


def test_the_tc_panel_draws_the_critic_beside_the_model_estimate():
    """The critic's points sit on the model's `tc` panel: orange markers appear there only."""
    own = [{"step": s, "loss": 1.0, "tc": 0.1} for s in (10, 20, 30)]
    critic = [{"step": s, "eval": {"tc_critic": 3.0}} for s in (10, 30)]

    def orange_columns(records):
        rgb = np.asarray(training_curves(records).convert("RGB")).astype(int)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return np.nonzero(((r > 200) & (g > 100) & (g < 160) & (b < 60)).any(axis=0))[0], rgb

    assert len(orange_columns(own)[0]) == 0
    columns, rgb = orange_columns(own + critic)  # panels: loss, tc, metrics during training
    third = rgb.shape[1] // 3
    assert len(columns) > 0 and third < columns.min() and columns.max() < 2 * third


def test_every_figure_lands_in_the_run(tiny_run):
    written = write_figures(tiny_run)
    expected = {"traversal", "samples", "kl", "reconstructions", "knobs", "knobs.json", "curves"}
    assert set(written) == expected and all(p.is_file() for p in written.values())
    knobs = json.loads(written["knobs.json"].read_text())
    assert [k["latent"] for k in knobs] == [0, 1, 2, 3]
    assert (tiny_run / "figures" / "traversal.gif").is_file()


def test_health_warnings_name_nan_stops_kl_spikes_and_collapse(tmp_path):
    run = tmp_path / "run"
    untwine.train(tiny_config(), run, progress=False)
    rising = [{"step": 5 * i, "kl": 0.1 * 2**i, "kl_per_dim": [1.0] * 4} for i in range(1, 9)]
    (run / runs.LOG).write_text("".join(json.dumps(r) + "\n" for r in rising))
    assert health_warnings(run) == []  # a KL that grows as training starts is no spike
    spiked = [{"step": 5 * i, "kl": 3.0, "kl_per_dim": [0.0, 0.0, 3.0, 0.0]} for i in range(8)]
    spiked[5]["kl"] = 40.0
    lines = [json.dumps(r) for r in spiked] + [json.dumps({"step": 41, "diverged": ["kl"]})]
    (run / runs.LOG).write_text("\n".join(lines) + "\n")
    warnings = health_warnings(run)
    assert any(w.startswith("training stopped at step 41: kl") for w in warnings)
    assert any(w.startswith("KL spike at step 25: 40 nats") for w in warnings)
    assert any("3 of 4 latents collapsed" in w and "z0, z1, z3" in w for w in warnings)


def test_health_warns_when_a_model_sees_under_half_the_critic_tc(tmp_path):
    run = tmp_path / "run"
    untwine.train(tiny_config(), run, progress=False)
    own = [{"step": 10 * i, "tc": 0.15, "kl": 3.0} for i in range(1, 5)]
    critic = [
        {"step": 10 * i, "eval": {"tc_critic": c}}
        for i, c in zip((1, 2, 3, 4), (0.05, 0.2, 0.9, 1.1), strict=True)
    ]
    records = [r for pair in zip(own, critic, strict=True) for r in pair]
    (run / runs.LOG).write_text("".join(json.dumps(r) + "\n" for r in records))
    assert health_warnings(run) == [
        "the model's own tc estimate was below half of tc_critic's reading at 2 of 3 "
        "evaluations (last at step 40: 0.15 against 1.1): its penalty sees less than its codes "
        "carry"
    ]
    (run / runs.LOG).write_text("".join(json.dumps(r) + "\n" for r in records[:4]))
    assert health_warnings(run) == []  # 0.15 of 0.2 is seen; 0.05 is too small to judge by


def test_the_report_holds_every_section_with_images_embedded(tiny_run):
    path = report(tiny_run)
    page = path.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: opens offline
    assert len(re.findall(r'src="data:image/(png|gif);base64,', page)) >= 7
    assert "<code>mig</code>" in page and "Mutual Information Gap" in page
    assert "<code>mig.position_x</code>" in page and "MIG for position_x alone" in page


def test_the_cli_writes_the_report(tiny_run):
    result = run_cli("report", str(tiny_run))
    assert result.stdout.strip() == str(tiny_run / REPORT)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _open_in_chromium(page, shot):
    """Load `page` headless and screenshot it; returns the console lines chromium logged."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr"]
    command += ["--v=0", f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), result.stderr[-2000:]
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_the_report_opens_in_a_headless_browser_without_console_errors(tiny_run, tmp_path):
    broken = tmp_path / "broken.html"  # first, that a console error would be seen
    broken.write_text("<html><body><script>console.error('boom')</script></body></html>")
    assert any("boom" in line for line in _open_in_chromium(broken, tmp_path / "broken.png"))
    shot = tmp_path / "report.png"
    assert _open_in_chromium(report(tiny_run), shot) == []
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2400, 1200) and pixels.std() > 10  # something was drawn
