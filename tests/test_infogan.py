"""InfoGAN: its losses against hand computations, Q learning to read codes, and runs via the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import untwine
from untwine.config import apply_overrides, resolve_config
from untwine.errors import UntwineError
from untwine.losses import gaussian_code_nll, gradient_penalty
from untwine.models import create_model
from untwine.train.trainer import TrainingDiverged, _stop_if_not_finite

from .conftest import assert_gradient_reaches_only, run_cli


def _toy(**options):
    """An InfoGAN on 6-feature rows, small enough to train in a test."""
    defaults = {
        "observation_shape": (6,),
        "arch": "mlp",
        "hidden": (32,),
        "noise_dim": 2,
        "continuous": 2,
        "categorical": (3,),
        "output": "linear",
    }
    return create_model("infogan", **{**defaults, **options})


def test_the_categorical_term_is_the_cross_entropy_of_q_logits():
    torch.manual_seed(0)
    model = _toy(categorical=(3, 4))
    features = torch.randn(5, 256)
    cat = torch.tensor([[0, 1], [2, 3], [1, 0], [0, 2], [2, 1]])
    info_cat, _ = model.information_loss(features, cat, torch.zeros(5, 2))
    out = model.q_head(features)
    direct = sum(
        -torch.log_softmax(logits, dim=1)[torch.arange(5), cat[:, i]].mean()
        for i, logits in enumerate((out[:, :3], out[:, 3:7]))
    )
    torch.testing.assert_close(info_cat, direct)


def test_the_continuous_term_is_a_factorised_gaussian_nll():
    code = torch.tensor([[0.5, -1.0], [0.0, 0.25]])
    mean = torch.tensor([[0.0, -0.5], [0.1, 0.25]])
    logvar = torch.tensor([[0.0, math.log(0.25)], [-1.0, 0.5]])
    by_hand = 0.0
    for i in range(2):
        for d in range(2):
            var = math.exp(logvar[i, d])
            by_hand += 0.5 * math.log(2 * math.pi * var) + (code[i, d] - mean[i, d]) ** 2 / (
                2 * var
            )
    assert gaussian_code_nll(code, mean, logvar).item() == pytest.approx(by_hand / 2)


def test_a_fixed_code_std_reads_continuous_codes_with_unit_variance():
    """OpenAI's reference: L_cont = 1/2 (c - mean)^2 + 1/2 log 2π per code, whatever Q's
    variance outputs say; learned, the same error weighs 1/σ²."""
    torch.manual_seed(0)
    features, cont = torch.randn(5, 256), torch.randn(5, 2)
    for fixed in (True, False):
        model = _toy(categorical=(), fixed_code_std=fixed)
        _, info_cont = model.information_loss(features, torch.zeros(5, 0).long(), cont)
        mean, logvar = model.q_head(features).chunk(2, dim=1)
        var = torch.ones_like(logvar) if fixed else logvar.clamp(-6, 2).exp()
        by_hand = (0.5 * torch.log(2 * math.pi * var) + (cont - mean) ** 2 / (2 * var)).sum(1)
        torch.testing.assert_close(info_cont, by_hand.mean())


def test_the_gradient_penalty_matches_a_direct_computation():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    torch.manual_seed(1)
    penalty = gradient_penalty(lambda v: critic(v).squeeze(1), real, fake)
    torch.manual_seed(1)
    e = torch.rand(4, 1)
    direct = 0.0
    for i in range(4):
        point = (e[i] * real[i] + (1 - e[i]) * fake[i]).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(point).sum(), point)
        direct += (grad.norm() - 1) ** 2 / 4
    torch.testing.assert_close(penalty, direct)
    linear = torch.nn.Linear(3, 1)
    expected = (linear.weight.norm() - 1) ** 2  # a linear critic's gradient is its weight
    torch.testing.assert_close(gradient_penalty(lambda v: linear(v), real, fake), expected)


@pytest.mark.parametrize("kind", ["standard", "hinge", "wgan-gp"])
def test_adversarial_losses_follow_their_definitions(kind):
    model = _toy(discriminator_loss=kind)
    d_real, d_fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    g, d = model._adversarial(d_real, d_fake, d_fake)
    sigmoid = torch.sigmoid
    expected = {
        "standard": (
            -torch.log(sigmoid(d_fake)).mean(),
            -(torch.log(sigmoid(d_real)) + torch.log(1 - sigmoid(d_fake))).mean(),
        ),
        "hinge": (-d_fake.mean(), (F.relu(1 - d_real) + F.relu(1 + d_fake)).mean()),
        "wgan-gp": (-d_fake.mean(), d_fake.mean() - d_real.mean()),
    }[kind]
    torch.testing.assert_close((g, d), expected)


def test_q_learns_to_read_codes_that_are_recoverable():
    """On a toy where the observation carries the codes, L_I falls to its floor."""
    torch.manual_seed(0)
    model = _toy(noise_dim=0)
    critic = model.objectives()["discriminator_loss"]["params"]
    optimizer = torch.optim.Adam(critic, lr=3e-3)
    for _ in range(400):
        _, cat, cont = model.sample_inputs(128)
        x = torch.cat([F.one_hot(cat[:, 0], 3).float(), cont, torch.zeros(128, 1)], dim=1)
        info_cat, info_cont = model.information_loss(model.body(x), cat, cont)
        optimizer.zero_grad()
        (info_cat + info_cont).backward()
        optimizer.step()
    assert info_cat.item() < 0.02  # the categorical code is read without error
    assert info_cont.item() < 2 * 0.5 * (math.log(2 * math.pi) - 5)  # near the log-variance floor
    _, cat, cont = model.sample_inputs(256)
    x = torch.cat([F.one_hot(cat[:, 0], 3).float(), cont, torch.zeros(256, 1)], dim=1)
    codes = model.representation(x)
    assert (codes[:, :2] - cont).abs().max() < 0.1 and torch.equal(codes[:, 2].long(), cat[:, 0])


def test_each_player_steps_only_its_own_parameters():
    model = _toy(spectral_norm=True)
    objectives = model.objectives()
    generator = {id(p) for p in objectives["loss"]["params"]}
    critic = {id(p) for p in objectives["discriminator_loss"]["params"]}
    assert not generator & critic and generator | critic == {id(p) for p in model.parameters()}
    assert objectives["discriminator_loss"]["options"]["lr"] == model.discriminator_lr
    assert any("parametrizations" in name for name, _ in model.named_parameters())


def test_each_objective_reaches_every_parameter_of_its_player_and_no_other():
    torch.manual_seed(0)
    model = create_model("infogan", observation_shape=(1, 64, 64), categorical=(3,))
    terms = model.loss(torch.rand(8, 1, 64, 64).round(), step=0)
    for key, spec in model.objectives().items():
        model.zero_grad(set_to_none=True)
        terms[key].backward(retain_graph=True)
        assert_gradient_reaches_only(model, spec["params"], key)


def test_g_normalises_its_batches_and_d_leaks():
    model = create_model("infogan", observation_shape=(1, 64, 64))
    relus = [m for m in model.generator.modules() if isinstance(m, torch.nn.ReLU)]
    norms = [
        m
        for m in model.generator.modules()
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)
    ]
    assert len(norms) == len(relus) == 5
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.body.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.body.modules())
    images = model.sample(4)
    assert images.shape == (4, 1, 64, 64) and images.min() >= 0 and images.max() <= 1


def test_representation_has_a_dimension_per_code():
    model = _toy(continuous=3, categorical=(4, 2))
    codes = model.representation(torch.randn(7, 6))
    assert codes.shape == (7, 5) and model.latent_dim == 5
    assert set(codes[:, 3].tolist()) <= {0, 1, 2, 3} and set(codes[:, 4].tolist()) <= {0, 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"continuous": 0, "categorical": ()}, "needs at least one code"),
        ({"categorical": (1,)}, "each categorical size >= 2"),
        ({"lambda_cont": -1.0}, "must be >= 0"),
        ({"discriminator_loss": "lsgan"}, "must be one of standard, hinge, wgan-gp"),
    ],
)
def test_bad_options_are_refused_at_the_door(options, message):
    with pytest.raises(UntwineError, match=message):
        _toy(**options)


def test_a_non_finite_discriminator_loss_stops_training(tmp_path):
    terms = {"loss": torch.tensor(1.0), "discriminator_loss": torch.tensor(float("nan"))}
    with pytest.raises(TrainingDiverged, match="discriminator_loss not finite"):
        _stop_if_not_finite(terms, ["loss", "discriminator_loss"], 7, tmp_path)


def _config(steps, **extra):
    overrides = {
        "model.name": "infogan",
        "model.categorical": "[3]",
        "model.continuous": 2,
        "train.steps": steps,
        "train.batch_size": 8,
        "train.log_every": 5,
        "train.checkpoint_every": 5,
        "train.device": "cpu",
        **extra,
    }
    return resolve_config(apply_overrides({}, [f"{k}={v}" for k, v in overrides.items()]))


@pytest.mark.parametrize("loss", ["standard", "wgan-gp"])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, loss):
    extra = {"model.discriminator_loss": loss}
    untwine.train(_config(5, **extra), tmp_path / "a", progress=False)
    untwine.train(_config(10, **extra), tmp_path / "a", progress=False)
    untwine.train(_config(10, **extra), tmp_path / "b", progress=False)
    a, b = load_file(tmp_path / "a/model.safetensors"), load_file(tmp_path / "b/model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    record = untwine.runs.read_log(tmp_path / "a")[-1]
    assert {"loss", "discriminator_loss", "info_cat", "info_cont", "images_per_s"} <= set(record)


def test_the_cli_trains_scores_traverses_and_samples_an_infogan(tmp_path):
    run = tmp_path / "gan"
    args = ["--model", "infogan", "--steps", "6", "--batch-size", "8", "--no-progress"]
    run_cli("train", *args, "--out", str(run), "model.categorical=[3]", "model.continuous=2")
    run_cli("evaluate", str(run), "--samples", "100", "--metrics", "mig,factor_vae")
    scores = json.loads((run / "metrics.json").read_text())
    assert 0 <= scores["mig"] <= 1 and 0 <= scores["code_accuracy"] <= 1 and "code_mse" in scores
    traversal = Image.open(run / "figures" / "traversal.png")
    rows = 3 * 3  # 3 codes (2 continuous, 1 categorical), 3 noise samples each
    assert traversal.height == rows * (64 + 2) + 2
    run_cli("sample", str(run), "--n", "10")
    samples = Image.open(run / "figures" / "samples.png")
    assert samples.size[1] == 2 * (64 + 2) + 2  # 10 images, 8 to a row
    pixels = np.asarray(samples)
    assert pixels.std() > 0


def test_sample_draws_a_vae_prior_and_writes_a_table_in_its_units(tmp_path):
    rows = ["a,b"] + [f"{1000 + i},{i % 7}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    args = ["--steps", "3", "--batch-size", "8", "--latent-dim", "2", "--no-progress"]
    run_cli("train", "--dataset", "table:t.csv", *args, "model.hidden=[16]", cwd=tmp_path)
    result = run_cli("sample", "runs/betavae-table-t-s0", "--n", "5", cwd=tmp_path)
    assert "5 samples" in result.stdout
    lines = (tmp_path / "runs/betavae-table-t-s0/samples.csv").read_text().splitlines()
    assert lines[0] == "a,b" and len(lines) == 6
    assert 900 < np.mean([float(line.split(",")[0]) for line in lines[1:]]) < 1100


def test_infogan_trains_at_its_own_default_rate_and_batch_unless_told_otherwise():
    chosen = resolve_config({"model": {"name": "infogan"}})
    assert (chosen.train.lr, chosen.train.batch_size) == (2e-4, 64)
    told = resolve_config({"model": {"name": "infogan"}, "train": {"lr": 1e-3}})
    assert (told.train.lr, told.train.batch_size) == (1e-3, 64)
    assert resolve_config({"model": {"name": "vae"}}).train.lr == 1e-3
