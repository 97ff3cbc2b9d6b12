"""The `untwine` command driven through subprocesses, as a user would."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import untwine
from tests.conftest import run_cli, run_cli_process
from untwine import runs
from untwine.models import MODELS

TINY = [
    "--steps",
    "6",
    "--batch-size",
    "4",
    "--latent-dim",
    "3",
    "--device",
    "cpu",
    "--no-progress",
    "train.log_every=3",
    "model.hidden=[64]",
]


def test_train_writes_the_run_and_its_traversal_then_traverse_redraws_it(tmp_path):
    result = run_cli(
        "train", "--model", "betavae", "--beta", "4", "--out", str(tmp_path / "demo"), *TINY
    )
    assert f"run:       {tmp_path / 'demo'}/" in result.stdout
    figure = tmp_path / "demo" / "figures" / "traversal.png"
    assert f"traversal: {figure}" in result.stdout
    assert Image.open(figure).size[1] == 3 * (64 + 2) + 2  # one row per latent
    again = run_cli(
        "train", "--model", "betavae", "--beta", "4", "--out", str(tmp_path / "demo"), *TINY
    )
    assert "already trained to step 6" in again.stderr
    figure.unlink()
    assert run_cli("traverse", str(tmp_path / "demo")).stdout.strip() == str(figure)
    assert figure.exists()


def test_config_file_then_flags_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "model:\n  name: betavae\n  beta: 8\ntrain:\n  lr: 1e-3\n  steps: 4\n"
    )
    run_cli(
        "train",
        "--config",
        str(tmp_path / "c.yaml"),
        "--out",
        str(tmp_path / "r"),
        *TINY,
        "model.beta=2",
    )
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert "beta: 2.0" in saved and "lr: 0.001" in saved and "steps: 6" in saved


def test_progress_bar_shows_step_loss_terms_and_speed(tmp_path):
    result = run_cli(
        "train", "--out", str(tmp_path / "r"), *[a for a in TINY if a != "--no-progress"]
    )
    assert "6/6" in result.stderr and "recon=" in result.stderr and "kl=" in result.stderr
    assert "images_per_s=" in result.stderr


def test_a_schedule_that_outlasts_training_is_one_warning_line_and_the_run_goes_on(tmp_path):
    result = run_cli(
        "train",
        "--model",
        "annealedvae",
        "--out",
        str(tmp_path / "r"),
        *TINY,
        "model.capacity_steps=12",
    )
    warnings = [line for line in result.stderr.splitlines() if "capacity_steps" in line]
    assert warnings == [
        "warning: model.capacity_steps=12 outlasts train.steps=6: the capacity reaches 12.5 of "
        "25 nats; set model.capacity_steps to about a third of train.steps (the study's ratio)"
    ]
    assert "Traceback" not in result.stderr and runs.read_log(tmp_path / "r")[-1]["step"] == 6


def test_models_and_datasets_are_listed():
    models = run_cli("models").stdout
    assert "betavae:" in models and "vae:" in models and "beta = 16.0" in models
    datasets = run_cli("datasets").stdout
    assert "dsprites:" in datasets and "shape 3, scale 6, orientation 40" in datasets
    assert "dsprites-color:" in datasets and "dsprites-correlated:" in datasets


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "gan"], "error: unknown model 'gan'; available: adagvae, adamlvae"),
        (["--dataset", "mnist"], "error: unknown dataset 'mnist'"),
        (["--steps", "-3"], "error: train.steps must be at least 1, got -3"),
        (["--latent-dim", "0"], "error: model.latent_dim must be at least 1, got 0"),
        (["--config", "missing.yaml"], "error: cannot read config file missing.yaml"),
        (["model.betta=3"], "error: unknown option 'betta' for model 'betavae'"),
        (["--model", "vae", "--beta", "4"], "error: unknown option 'beta' for model 'vae'"),
        (["--out", "afile"], "error: output path afile is a file"),
        (["--seed", "-1"], "error: train.seed must be from 0 to 9223372036854775807, got -1"),
        (["--lr", "inf"], "error: train.lr must be a finite number, got inf"),
        (["--beta", "nan"], "error: model.beta must be a finite number, got nan"),
        (["--grad-clip", "nan"], "error: train.grad_clip must be a finite number, got nan"),
    ],
)
def test_bad_input_ends_with_one_line_and_exit_code_2(tmp_path, args, message):
    (tmp_path / "afile").write_text("x")
    result = run_cli("train", "--steps", "1", *args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message) or message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_installed_command_runs_as_its_own_process(tmp_path):
    """The rest of the suite drives the CLI in-process; here the interpreter starts it."""
    assert run_cli_process("--version").stdout.startswith("untwine, version ")
    result = run_cli_process("train", "--steps", "-3", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: train.steps must be at least 1, got -3"


@pytest.mark.parametrize("verb", ["evaluate", "score", "traverse", "sample", "report"])
def test_every_seed_follows_one_rule(tmp_path, verb):
    """0 to 2^63 - 1, as train.seed: checked before the run is even read."""
    result = run_cli(verb, str(tmp_path), "--seed", str(2**63), check=False)
    assert result.returncode == 2
    assert result.stderr == f"error: --seed must be from 0 to {2**63 - 1}, got {2**63}\n"


def test_traverse_of_a_folder_that_is_no_run_is_a_user_error(tmp_path):
    result = run_cli("traverse", str(tmp_path), check=False)
    assert result.returncode == 2 and "is not an untwine run" in result.stderr


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_through_the_cli_into_a_loadable_run(tmp_path, name):
    run_dir = tmp_path / name
    example = MODELS.example(name, tmp_path)  # each model's tiny options, as `key=value`
    sizes = [
        f"model.{key}={json.dumps(list(v) if isinstance(v, tuple) else v)}"
        for key, v in example.items()
    ]
    tiny = [arg for arg in TINY if arg not in ("--latent-dim", "3", "model.hidden=[64]")]
    run_cli("train", "--model", name, "--out", str(run_dir), *tiny, *sizes)
    model = untwine.load_run(run_dir)
    assert model.config == {**model.config, **example, "name": name}
    log = runs.read_log(run_dir)
    assert [r["step"] for r in log] == [3, 6] and all(np.isfinite(r["loss"]) for r in log)


def test_betatcvae_logs_its_decomposition_and_takes_n_from_the_data(tmp_path):
    run_cli("train", "--model", "betatcvae", "--out", str(tmp_path / "tc"), *TINY)
    assert {"mi", "tc", "dwkl"} <= set(runs.read_log(tmp_path / "tc")[0])
    assert runs.read_config(tmp_path / "tc").model.options["dataset_size"] == 737_280


@pytest.mark.parametrize("arch", ["conv64-deep", "mlp"])
def test_each_arch_trains_through_the_cli_and_is_saved_with_its_sizes(tmp_path, arch):
    run_dir = tmp_path / arch
    run_cli("train", "--arch", arch, "--out", str(run_dir), *TINY, "model.hidden=[32,16]")
    options = runs.read_config(run_dir).model.options
    assert options["arch"] == arch and list(options["hidden"]) == [32, 16]
    model = untwine.load_run(run_dir)
    assert model.encoder(torch.zeros(1, 1, 64, 64)).shape == (1, 2 * model.latent_dim)


@pytest.mark.parametrize(
    ("dataset", "options", "channels"),
    [
        ("dsprites-color", [], 3),
        ("dsprites-noisy", [], 3),
        ("dsprites-correlated", ["data.factors=[shape,scale]", "data.sigma=0.1"], 1),
    ],
)
def test_each_dsprites_variant_trains_through_the_cli(tmp_path, dataset, options, channels):
    run_dir = tmp_path / dataset
    run_cli("train", "--dataset", dataset, "--out", str(run_dir), *options, *TINY)
    config = runs.read_config(run_dir)
    assert config.data.name == dataset
    assert untwine.load_run(run_dir).observation_shape == (channels, 64, 64)
    if options:
        assert config.data.options == {"factors": ("shape", "scale"), "sigma": 0.1}


def test_datasets_show_writes_a_grid_of_what_the_model_will_see(tmp_path):
    out = tmp_path / "look.png"
    result = run_cli("datasets", "show", "dsprites-noisy", "--n", "10", "--out", str(out))
    assert "10 images of dsprites-noisy (3x64x64)" in result.stdout
    assert Image.open(out).size == (8 * 66 + 2, 2 * 66 + 2)  # 8 to a row, 2 px gaps
    tight = tmp_path / "tight.png"
    run_cli("datasets", "show", "dsprites-correlated", "data.sigma=0.05", "--out", str(tight))
    bad = run_cli("datasets", "show", "dsprites", "data.sigma=2", check=False)
    assert bad.returncode == 2 and "unknown option 'sigma' for dataset 'dsprites'" in bad.stderr


def test_datasets_show_draws_pairs_each_image_above_its_partner(tmp_path):
    out = tmp_path / "pairs.png"
    result = run_cli("datasets", "show", "dsprites", "--pairs", "1", "--n", "12", "--out", str(out))
    assert "12 pairs of dsprites that differ in 1 factor:" in result.stdout
    grid = np.asarray(Image.open(out).convert("L"))
    assert grid.shape == (4 * 66 + 2, 8 * 66 + 2)  # two rows of partners, 8 pairs to a row
    cells = [
        [grid[2 + 66 * r : 66 * (r + 1), 2 + 66 * c : 66 * (c + 1)] for c in range(8)]
        for r in range(4)
    ]
    assert all((cells[0][c] != cells[1][c]).any() for c in range(8))  # a partner differs
    assert not cells[3][5].any()  # the last row holds 4 pairs; the rest stay blank
    for k, message in (("0", "--pairs must be -1 (drawn for each pair) or 1..5"), ("-1", None)):
        done = run_cli("datasets", "show", "shapes3d", "--pairs", k, "--out", str(out), check=False)
        assert (
            (done.returncode == 2 and message in done.stderr) if message else done.returncode == 0
        )
    np.save(tmp_path / "rows.npy", np.zeros((20, 64, 64, 1), np.uint8))
    refused = run_cli(
        "datasets", "show", f"array:{tmp_path / 'rows.npy'}", "--pairs", "1", check=False
    )
    assert refused.returncode == 2 and "this data has no pairs: a folder" in refused.stderr
    assert "Traceback" not in refused.stderr
