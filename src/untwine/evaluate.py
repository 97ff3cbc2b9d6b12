"""Evaluation: encode a dataset in batches, run the metrics, add model health, save the scores."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from untwine import metrics as m
from untwine import runs
from untwine.data import Dataset, load_dataset, to_tensor
from untwine.losses import kl_normal
from untwine.metrics._sampling import sample_codes
from untwine.models import Model, VAEBase
from untwine.models.base import ACTIVE_UNIT_THRESHOLD


def representation_function(
    model: Model, *, batch_size: int = 256
) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 images (n, H, W, C) -> posterior means (n, d), encoded `batch_size` at a time."""
    device = next(model.parameters()).device

    def encode(images: np.ndarray) -> np.ndarray:
        codes = [
            model.representation(to_tensor(images[i : i + batch_size], device)).cpu().numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(codes).astype(np.float64)

    return encode


@torch.no_grad()
def model_health(
    model: Model,
    dataset: Dataset,
    indices: np.ndarray,
    *,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, float | list[float]]:
    """Active units, and per model kind what shows its health, read on `indices`.

    A VAE: per-dimension KL, reconstruction NLL and ELBO (per observation, nats), the
    reconstruction a one-sample estimate with its own seeded generator. A GAN with codes: how
    well Q reads them back from fresh samples. Evaluating never moves the training RNG.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    if not isinstance(model, VAEBase):
        codes = representation_function(model, batch_size=batch_size)(dataset.observations(indices))
        return {
            "active_units": _active_units(codes),
            **model.code_recovery(len(indices), generator),
        }
    kl_sum, recon_sum = torch.zeros(model.latent_dim, device=device), 0.0
    means = []
    for i in range(0, len(indices), batch_size):
        x = to_tensor(dataset.observations(indices[i : i + batch_size]), device)
        mu, logvar = model.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=device)
        z = mu + eps * torch.exp(0.5 * logvar)
        kl_sum += kl_normal(mu, logvar).sum(0)
        recon_sum += model.nll(model.decode(z), x).item() * len(x)
        means.append(mu)
    kl_per_dim = (kl_sum / len(indices)).cpu().tolist()
    recon = recon_sum / len(indices)
    return {
        "active_units": _active_units(torch.cat(means).double().cpu().numpy()),
        "kl_per_dim": [round(v, 6) for v in kl_per_dim],
        "kl": float(sum(kl_per_dim)),
        "reconstruction": float(recon),
        "elbo": float(-(recon + sum(kl_per_dim))),
    }


def _active_units(codes: np.ndarray) -> int:
    """Units whose mean code varies across observations: Var > 0.01 (Burda et al.)."""
    return int((codes.var(axis=0) > ACTIVE_UNIT_THRESHOLD).sum())


FACTOR_FREE_METRICS = tuple(m.CODE_METRICS)


def metrics_for(
    dataset: Dataset,
    metrics: str | Iterable[str],
    model: Model | None = None,
    samples: int | None = None,
) -> list[str]:
    """The metrics to run: "all" keeps those the dataset's factors, the model and the number of
    `samples` allow; a named metric either can run or is a one-line error."""
    names = m.parse_metrics(metrics)
    asked_all = metrics == "all"
    if samples is not None:
        names = m.enough_codes(names, samples, asked_all)
    if model is not None and not isinstance(model, VAEBase):
        names = m.keep_runnable(
            names,
            lambda n: n not in m.POSTERIOR_METRICS,
            asked_all,
            lambda n: (
                f"metric {n!r} reads the posterior q(z|x), which only the VAE family "
                f"has; this model is {type(model).__name__}"
            ),
        )
    if dataset.factor_names:
        return names
    return m.keep_runnable(
        names,
        lambda n: n in FACTOR_FREE_METRICS,
        asked_all,
        lambda n: (
            f"metric {n!r} needs ground-truth factors, and this dataset has none; "
            f"without factors: {', '.join(FACTOR_FREE_METRICS)} (give factors to score the rest)"
        ),
    )


@torch.no_grad()
def chen_mig_scores(
    model: VAEBase, dataset: Dataset, samples: int, seed: int, *, batch_size: int = 256
) -> dict[str, float]:
    """Chen et al.'s MIG and each factor's term (`mig_chen.<factor>`), on `samples` fresh points.

    The points come from their own generator (seeded by `seed`), so asking for this score
    leaves every other score's draw as it was.
    """
    rng = np.random.default_rng([seed, 1])
    factors = dataset.sample_factors(samples, rng)
    device = next(model.parameters()).device
    posteriors = []
    for i in range(0, samples, batch_size):
        images = dataset.observations_from_factors(factors[i : i + batch_size], rng)
        posteriors.append(torch.cat(model.encode(to_tensor(images, device)), dim=1))
    mu, logvar = np.split(torch.cat(posteriors).double().cpu().numpy(), 2, axis=1)
    gaps = m.mig_chen_per_factor(mu, logvar, factors, seed=seed)
    named = zip(dataset.factor_names, gaps, strict=True)
    return {
        "mig_chen": float(np.nanmean(gaps)),
        **{f"mig_chen.{name}": float(gap) for name, gap in named if not np.isnan(gap)},
    }


@torch.no_grad()
def critic_tc_scores(
    model: Model, dataset: Dataset, samples: int, seed: int, *, batch_size: int = 256
) -> dict[str, float]:
    """`tc_critic.*` on `samples` training observations of the model's own draw.

    For the VAE family the critic reads z drawn from q(z|x), the aggregate posterior q(z)
    whose total correlation β-TCVAE and FactorVAE penalise; for other models, the codes. Its
    points and noise come from generators of its own (seeded by `seed`), so every other
    score's draw stays as it was.
    """
    device = next(model.parameters()).device
    indices = dataset.sample_indices(samples, torch.Generator().manual_seed(seed))
    noise = torch.Generator(device=device).manual_seed(seed)
    codes = []
    for i in range(0, samples, batch_size):
        x = to_tensor(dataset.observations(indices[i : i + batch_size]), device)
        if isinstance(model, VAEBase):
            mu, logvar = model.encode(x)
            eps = torch.randn(mu.shape, generator=noise, device=device)
            codes.append(mu + eps * torch.exp(0.5 * logvar))
        else:
            codes.append(model.representation(x))
    return m.score(torch.cat(codes).double().cpu().numpy(), metrics=["tc_critic"], seed=seed)


def evaluate(
    run: str | Path | Model,
    dataset: Dataset | None = None,
    *,
    metrics: str | Iterable[str] = "all",
    seed: int = 0,
    samples: int = 10_000,
    dci_estimator: str = "fast",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, float | list[float]]:
    """Score a run (a path, whose metrics.json is then written) or a model on `dataset`.

    As in the reference study: `samples` train and `samples // 2` test points are drawn afresh
    (seeded by `seed`); the BetaVAE and FactorVAE scores draw their own points with the same
    budget; Chen et al.'s MIG (`mig_chen`, the VAE family only) reads the posteriors of
    `samples` points of its own, and so does the critic's total correlation (`tc_critic`, see
    `critic_tc_scores`). `dci_estimator` picks DCI's classifier (see
    `untwine.metrics.dci`). Model health (KL per dimension, active units, reconstruction,
    ELBO) is read on `samples // 2` held-out observations: the validation split where the
    dataset has one. A dataset without factors gets the code metrics and health only.
    Nothing here touches the global torch RNG.
    """
    run_dir = None if isinstance(run, torch.nn.Module) else Path(run)
    model = runs.load_run(run_dir, device) if run_dir else run
    if dataset is None:
        if run_dir is None:
            raise TypeError("evaluate(model) needs a dataset")
        config = runs.read_config(run_dir)
        dataset = load_dataset(config.data.name, **config.data.options)
    names = metrics_for(dataset, metrics, model, samples)
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    encode = representation_function(model, batch_size=batch_size)
    stages = tqdm(total=2 + len(names), disable=not progress, unit="stage", leave=False)

    def stage(name: str) -> None:
        stages.set_description(name)
        stages.update(1)

    results: dict[str, float | list[float]] = {}
    n_test = max(samples // 2, 2)
    with stages:
        stage("encoding")
        code_names = [n for n in names if n in m.CODE_METRICS and n != "tc_critic"]
        if not dataset.factor_names and code_names:  # the codes alone, no factors
            codes = encode(dataset.observations(rng.integers(0, len(dataset), samples)))
            results.update(m.score(codes, metrics=code_names, seed=seed, on_metric=stage))
        array_names = [n for n in names if n in m.ARRAY_METRICS or n in code_names]
        if array_names and dataset.factor_names:
            train = sample_codes(dataset, encode, samples, rng)
            test = sample_codes(dataset, encode, n_test, rng)
            results.update(
                m.score(
                    *train,
                    *test,
                    metrics=array_names,
                    seed=seed,
                    dci_estimator=dci_estimator,
                    factor_names=dataset.factor_names,
                    on_metric=stage,
                )
            )
        sampled = {"num_train": samples, "num_eval": max(samples // 2, 1)}
        if "beta_vae" in names:
            stage("beta_vae")
            scores = m.beta_vae_score(dataset, encode, rng, **sampled)
            results.update(
                {
                    "beta_vae": scores["eval_accuracy"],
                    "beta_vae.train_accuracy": scores["train_accuracy"],
                }
            )
        if "factor_vae" in names:
            stage("factor_vae")
            scores = m.factor_vae_score(
                dataset, encode, rng, **sampled, num_variance_estimate=samples
            )
            results.update(
                {
                    "factor_vae": scores["eval_accuracy"],
                    "factor_vae.train_accuracy": scores["train_accuracy"],
                    "factor_vae.active_codes": scores["active_codes"],
                }
            )
        if "mig_chen" in names:
            stage("mig_chen")
            results.update(chen_mig_scores(model, dataset, samples, seed, batch_size=batch_size))
        if "tc_critic" in names:
            stage("tc_critic")
            results.update(critic_tc_scores(model, dataset, samples, seed, batch_size=batch_size))
        stage("health")
        held_out = dataset.held_out_indices(n_test, rng)
        results.update(model_health(model, dataset, held_out, batch_size=batch_size, seed=seed))
    model.train(was_training)
    if run_dir is not None:
        record = {
            "step": runs.trained_steps(run_dir),
            "seed": seed,
            "samples": samples,
            "dci_estimator": dci_estimator,
            **results,
        }
        runs.atomic_write(run_dir / runs.METRICS, (json.dumps(record, indent=2) + "\n").encode())
    return results
