"""The quantised autoencoders (QLAE, Tripod): their quantisers, losses and penalties by hand,
their optimiser, and the figures and scores a quantised code gets (its explorer sliders:
test_explore.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from scipy.stats import norm

import untwine
from untwine import runs
from untwine.data import load_dataset, to_tensor
from untwine.errors import UntwineError
from untwine.evaluate import agreement, representation_function
from untwine.losses import (
    kernel_multiinformation,
    normalized_hessian_penalty,
    reconstruction,
    silverman_bandwidth,
)
from untwine.metrics import discrete_entropy, udr
from untwine.models import create_model
from untwine.train import build, train
from untwine.train.trainer import make_optimizers
from untwine.viz.traversal import traversal_cells

from .conftest import run_cli, tiny_config

TINY = ["--model", "qlae", "--steps", "150", "--batch-size", "16", "--no-progress"]
SMALL = ["model.hidden=[64]", "model.values_per_latent=5"]


def _qlae(**options):
    return create_model(
        "qlae", observation_shape=(1, 64, 64), latent_dim=3, hidden=(32,), **options
    )


def _batch(n: int = 8) -> torch.Tensor:
    dataset = load_dataset("dsprites")
    return to_tensor(dataset.observations(np.arange(0, len(dataset), len(dataset) // n)[:n]))


def test_every_quantised_value_is_the_nearest_entry_of_its_latents_codebook():
    model = _qlae(values_per_latent=4)
    codebooks = [[-1.0, 0.0, 1.0, 2.0], [0.3, -0.3, 0.1, 0.9], [5.0, -5.0, 0.5, -0.5]]
    with torch.no_grad():
        model.values.copy_(torch.tensor(codebooks))  # unsorted, as learnt values may end up
    z = torch.tensor([[0.4, 0.15, 0.2], [1.6, -2.0, -9.0], [-7.0, 0.5, 0.0]])
    quantized, index = model.quantize(z)
    expected = [[0.0, 0.1, 0.5], [2.0, -0.3, -5.0], [-1.0, 0.3, -0.5]]  # ties: the lower value
    torch.testing.assert_close(quantized, torch.tensor(expected))
    values = model.latent_values()
    assert torch.equal(values.gather(1, index.T).T, quantized)  # the index names the entry
    assert torch.equal(values, values.sort(dim=1).values)


def test_the_loss_is_the_reconstruction_plus_the_papers_terms_scaled_to_summed_pixels():
    torch.manual_seed(0)
    model = _qlae(values_per_latent=4, quantization_weight=0.02, commitment_weight=0.05)
    x = _batch()
    terms = model.loss(x, step=0)
    z = model.encoder(x)  # (B, D)
    values = model.values.detach().sort(dim=1).values  # (D, V)
    nearest = torch.stack(
        [values[d][(z[:, d, None] - values[d]).abs().argmin(1)] for d in range(3)]
    )
    recon = reconstruction(model.decoder(nearest.T), x, "bernoulli", torch.tensor(0.0))
    squared = (z - nearest.T).pow(2).mean()  # mean over batch and latents, as the paper
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["quantization_error"], squared)
    torch.testing.assert_close(terms["loss"], recon + (0.02 + 0.05) * 4096 * squared)


def test_gradients_pass_straight_through_to_the_encoder_and_the_codebook_learns_its_own_term():
    torch.manual_seed(0)
    model = _qlae(values_per_latent=4, quantization_weight=0.0, commitment_weight=0.0)
    model.loss(_batch(), step=0)["loss"].backward()
    assert model.encoder.net[1].weight.grad.abs().sum() > 0  # through the rounding
    assert model.values.grad is None or model.values.grad.abs().sum() == 0  # recon: not at all
    model.zero_grad()
    model = _qlae(values_per_latent=4, quantization_weight=1.0, commitment_weight=0.0)
    terms = model.loss(_batch(), step=0)
    (terms["loss"] - terms["recon"]).backward()
    assert model.values.grad.abs().sum() > 0
    assert (
        model.encoder.net[1].weight.grad is None
        or model.encoder.net[1].weight.grad.abs().sum() == 0
    )


def test_adamw_decays_the_weight_matrices_only_and_clips_them_element_wise():
    model = _qlae(weight_decay=0.3, clip_value=0.5)
    (spec,) = model.objectives().values()
    (optimizer,) = make_optimizers(model.objectives(), lr=1e-3).values()
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed, free = optimizer.param_groups
    assert decayed["weight_decay"] == 0.3 and free["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"])
    assert any(p is model.values for p in free["params"])
    assert all(p.dim() == 1 for p in free["params"] if p is not model.values)  # biases
    assert spec["clip_value"] == 0.5 * 4096  # the paper's bound on a per-pixel mean, summed


def test_training_moves_the_codebook_and_a_saved_run_reloads_with_the_same_codes(tmp_path):
    config = tiny_config(**{"model.name": "qlae", "model.values_per_latent": 5})
    run = train(config, tmp_path / "run", progress=False)
    _, model, dataset = runs.open_run(run)
    start = torch.linspace(-0.5, 0.5, 5)
    assert not torch.allclose(model.values.detach(), start.repeat(4, 1))
    x = to_tensor(dataset.observations(np.arange(16)))
    codes = model.representation(x)
    assert all(
        set(codes[:, d].tolist()) <= set(model.latent_values()[d].tolist()) for d in range(4)
    )
    _, again, _ = runs.open_run(run)
    torch.testing.assert_close(again.representation(x), codes)


def test_the_latent_count_defaults_to_twice_the_datas_factors():
    config = tiny_config(**{"model.name": "qlae", "model.latent_dim": "null"})
    for name, latents in (("dsprites", 10), ("shapes3d", 12)):
        built, model = build(config, load_dataset(name))
        assert model.latent_dim == latents and built.model.options["latent_dim"] == latents
    _, model = build(
        tiny_config(**{"model.name": "qlae", "model.latent_dim": 3}), load_dataset("dsprites")
    )
    assert model.latent_dim == 3


@pytest.mark.parametrize(
    "option, message",
    [
        ("model.values_per_latent=1", "model.values_per_latent must be at least 2, got 1"),
        ("model.weight_decay=-0.1", "model.weight_decay must be non-negative, got -0.1"),
        ("model.clip_value=0", "model.clip_value must be positive, got 0"),
        ("model.commitment_weight=-1", "must be non-negative"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_2(option, message, tmp_path):
    result = run_cli("train", *TINY, "--out", str(tmp_path / "run"), option, check=False)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
    with pytest.raises(UntwineError, match="latent_dim is required"):
        create_model("qlae", observation_shape=(1, 64, 64))


@pytest.fixture(scope="module")
def qlae_run(tmp_path_factory):
    """A tiny QLAE on dSprites (10 latents of 5 values), evaluated and reported. Its codes all
    sit on one value for the first ~80 steps (the encoder starts far outside the codebook), so
    it trains 150."""
    run = tmp_path_factory.mktemp("qlae") / "run"
    run_cli("train", *TINY, "--out", str(run), *SMALL)
    run_cli("evaluate", str(run), "--metrics", "mig,infomec", "--samples", "500")
    run_cli("report", str(run))
    return run


def test_evaluation_reads_the_quantised_code_and_its_health(qlae_run):
    scores = json.loads((qlae_run / "metrics.json").read_text())
    assert 0 <= scores["mig"] <= 1 and 0 <= scores["infomec.infom"] <= 1
    assert len(scores["entropy_per_dim"]) == 10
    assert all(0 <= h <= np.log(5) + 1e-9 for h in scores["entropy_per_dim"])
    assert min(scores["entropy_per_dim"]) > 0.05  # 150 steps: every latent in use
    assert scores["entropy"] == pytest.approx(sum(scores["entropy_per_dim"]), abs=1e-4)
    assert scores["reconstruction"] > 0 and "kl" not in scores and "mig_chen" not in scores


def test_a_traversal_steps_each_latent_through_its_codebook(qlae_run):
    _, model, dataset = runs.open_run(qlae_run)
    cells, order, info, measure = traversal_cells(model, dataset, seed=0)
    assert measure == "H" and cells.shape[:2] == (10, 1 + 5)  # the input, then the 5 values
    x = to_tensor(dataset.observations(np.random.default_rng(0).integers(len(dataset), size=1)))
    z = model.representation(x).repeat(5, 1)
    row = int(order[0])
    z[:, row] = model.latent_values()[row]
    expected = model.mean_image(z).clamp(0, 1).mul(255).round().byte().numpy()
    assert np.array_equal(cells[0, 1:], expected)
    assert info[order[0]] == info.max()
    figures = qlae_run / "figures"
    assert (figures / "entropy.png").is_file() and not (figures / "kl.png").exists()
    assert (figures / "traversal.gif").is_file()
    assert "Information per latent" in (qlae_run / "report.html").read_text()


def _tripod(**options):
    return create_model(
        "tripod", observation_shape=(1, 64, 64), latent_dim=3, hidden=(32,), **options
    )


def test_tripods_quantiser_is_finite_scalar_quantisation_of_the_squashed_code():
    model = _tripod(values_per_latent=5)
    x = _batch()
    z = model.encode(x)
    assert z.abs().max() <= 1
    quantized, index = model.quantize(z)
    fsq = torch.round((z + 1) / 2 * 4) / 4 * 2 - 1  # Mentzer et al.'s rounding to 5 levels
    torch.testing.assert_close(quantized, fsq)
    assert torch.equal(index, torch.round((z + 1) / 2 * 4).long())
    assert not any(p is model.levels for p in model.parameters())  # fixed, not learnt


def test_kernel_multiinformation_by_hand_on_three_points():
    z = torch.tensor([[0.0, 1.0], [0.5, -1.0], [2.0, 0.0]])
    std = torch.tensor([0.8, 1.5])
    joint_width = std * silverman_bandwidth(3, 2)
    expected = []
    for i in range(3):
        joint = np.mean(
            [np.prod(norm.pdf(z[i], z[j], joint_width)) for j in range(3)]  # product kernel
        )
        marginals = [
            np.mean([norm.pdf(z[i, k], z[j, k], std[k]) for j in range(3)]) for k in (0, 1)
        ]
        expected.append(np.log(joint) - np.log(marginals).sum())
    actual = kernel_multiinformation(z, std)
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5)
    assert silverman_bandwidth(3, 2) == pytest.approx((4 / 4) ** (1 / 6) * 3 ** (-1 / 6))


def test_kernel_multiinformation_reads_more_for_copies_than_for_independent_codes():
    g = torch.Generator().manual_seed(0)
    independent = torch.randn(256, 4, generator=g)
    copies = torch.randn(256, 1, generator=g).repeat(1, 4) + 0.05 * independent
    read = [kernel_multiinformation(z, z.std(0)).mean().item() for z in (independent, copies)]
    assert read[1] > read[0] + 2  # nats


@pytest.mark.parametrize(
    "f, share",
    [
        (lambda z: [z[:, :1] ** 2 + z[:, 1:] ** 2], 0.0),  # H = 2I: nothing off the diagonal
        (lambda z: [z[:, :1] * z[:, 1:]], 1.0),  # H = [[0, 1], [1, 0]]: all of it
        (lambda z: [z[:, :1] ** 2 + z[:, :1] * z[:, 1:]], 1 / 3),  # [[2, 1], [1, 0]]: 2 of 6
    ],
)
def test_the_normalised_hessian_penalty_is_the_off_diagonal_share_of_the_hessian(f, share):
    z = torch.tensor([[0.3, -0.2], [1.0, 0.5]])
    penalty = normalized_hessian_penalty(
        f, z, torch.ones(2), perturbations=20_000, generator=torch.Generator().manual_seed(0)
    )
    assert penalty.item() == pytest.approx(share, abs=0.03)
    two = normalized_hessian_penalty(
        lambda z: [*f(z), *f(z)], z, torch.ones(2), perturbations=20_000
    )
    assert two.item() == pytest.approx(2 * share, abs=0.06)  # summed over outputs


def test_tripods_penalties_reach_the_encoder_and_decoder_and_every_gradient_is_clipped():
    torch.manual_seed(0)
    model = _tripod(values_per_latent=6, activation="gelu")
    terms = model.loss(_batch(), step=0)
    assert torch.isfinite(terms["loss"]) and terms["nhp"] >= 0
    (terms["loss"] - terms["recon"]).backward()
    assert model.encoder.net[1].weight.grad.abs().sum() > 0  # KLM and NHP through the code
    assert model.decoder.net[0].weight.grad.abs().sum() > 0  # NHP through the activations
    assert any(isinstance(layer, torch.nn.GELU) for layer in model.decoder.net)
    (spec,) = model.objectives().values()
    assert len(spec["clipped"]) == len(list(model.parameters())) and spec["options"] == {
        "weight_decay": 0.0
    }


@pytest.mark.parametrize(
    "option, message",
    [
        ("model.perturbations=1", "model.perturbations must be at least 2, got 1"),
        ("model.epsilon=0", "model.epsilon must be positive, got 0"),
        ("model.hessian_weight=-1", "must be non-negative"),
        ("model.activation=tanh", "model.activation must be one of relu, gelu"),
    ],
)
def test_tripods_bad_options_are_one_line_errors_with_exit_2(option, message, tmp_path):
    args = ["--model", "tripod", "--steps", "4", "--batch-size", "8", "--no-progress"]
    result = run_cli("train", *args, "--out", str(tmp_path / "run"), option, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_udr_reads_a_quantised_codes_latents_by_their_entropy(qlae_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(qlae_run, copy)
    _, model, dataset = runs.open_run(qlae_run)
    with torch.no_grad():  # one latent stuck on a value: it carries nothing and is left out
        model.values[0] = 0.0
    runs.save_weights(copy, model, runs.saved_step(copy))
    images = dataset.observations(dataset.sample_indices(300, torch.Generator().manual_seed(0)))
    codes = [representation_function(m)(images) for m in (untwine.load_run(qlae_run), model)]
    entropy = [discrete_entropy(c) for c in codes]
    assert entropy[1][0] == 0 and entropy[0][0] > 0
    expected = udr(codes, entropy)["scores"]
    assert agreement([qlae_run, copy], samples=300) == pytest.approx(expected.tolist())
