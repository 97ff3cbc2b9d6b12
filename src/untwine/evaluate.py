"""Evaluation: encode a dataset in batches, run the metrics, add model health, save the scores."""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from untwine import metrics as m
from untwine import runs
from untwine.data import Dataset, load_dataset, to_tensor
from untwine.encoded import BATCH, EncodedDataset
from untwine.errors import UntwineError, UntwineWarning
from untwine.files import atomic_write
from untwine.losses import kl_normal
from untwine.metrics._sampling import RepresentationFn
from untwine.metrics.registry import PosteriorFn
from untwine.models import Model, QuantizedAE, VAEBase
from untwine.models.base import ACTIVE_UNIT_THRESHOLD


def even_batches(n: int, size: int) -> list[slice]:
    """Slices of at most `size` rows covering n, as even as can be: no short batch at the end,
    which CPU kernels round differently (a batch of one moves a code by ~1e-7)."""
    parts = max(1, -(-n // size))
    bounds = [i * n // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def representation_function(
    model: Model, *, batch_size: int = 256
) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 images (n, H, W, C) -> posterior means (n, d), encoded `batch_size` at a time."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def encode(images: np.ndarray) -> np.ndarray:
        codes = [
            model.representation(to_tensor(images[part], device)).cpu().numpy()
            for part in even_batches(len(images), batch_size)
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
    reconstruction a one-sample estimate with its own seeded generator. A quantised
    autoencoder: each latent's entropy and its (deterministic) reconstruction NLL. A GAN with
    codes: how well Q reads them back from fresh samples. Evaluating never moves the training
    RNG.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    if isinstance(model, QuantizedAE):
        return _quantized_health(model, dataset, indices, batch_size)
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


def _quantized_health(
    model: QuantizedAE, dataset: Dataset, indices: np.ndarray, batch_size: int
) -> dict[str, float | list[float]]:
    """Active units, each latent's entropy over `indices` (nats) and the reconstruction NLL."""
    device = next(model.parameters()).device
    codes, values, recon_sum = [], [], 0.0
    for i in range(0, len(indices), batch_size):
        x = to_tensor(dataset.observations(indices[i : i + batch_size]), device)
        quantized, index = model.quantize(model.encode(x))
        recon_sum += model.nll(model.decode(quantized), x).item() * len(x)
        codes.append(index.cpu().numpy())
        values.append(quantized.double().cpu().numpy())
    entropy = m.discrete_entropy(np.concatenate(codes))
    return {
        "active_units": _active_units(np.concatenate(values)),
        "entropy_per_dim": [round(float(h), 6) for h in entropy],
        "entropy": float(entropy.sum()),
        "reconstruction": recon_sum / len(indices),
    }


def _active_units(codes: np.ndarray) -> int:
    """Units whose mean code varies across observations: Var > 0.01 (Burda et al.)."""
    return int((codes.var(axis=0) > ACTIVE_UNIT_THRESHOLD).sum())


def metrics_for(
    dataset: Dataset,
    metrics: str | Iterable[str],
    model: Model | None = None,
    samples: int | None = None,
) -> list[str]:
    """The metrics to run: "all" keeps those the dataset's factors, the model and the number of
    `samples` allow; a named metric either can run or is a one-line error."""
    return m.runnable(
        metrics,
        factors=bool(dataset.factor_names),
        posterior=model is None or isinstance(model, VAEBase),
        samples=samples,
        model=type(model).__name__,
    )


def posterior_function(model: VAEBase, *, batch_size: int = 256) -> PosteriorFn:
    """uint8 images (n, H, W, C) -> the posterior's mean and log-variance (n, d) each."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def posterior(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = zip(
            *(
                model.encode(to_tensor(images[part], device))
                for part in even_batches(len(images), batch_size)
            ),
            strict=True,
        )
        return torch.cat(mu).cpu().numpy(), torch.cat(logvar).cpu().numpy()

    return posterior


def code_table(model: Model, dataset: Dataset, *, limit_mb: float = 1024) -> EncodedDataset | str:
    """`dataset` encoded once per observation for the metrics to read by index, or why not.

    The table needs a `finite` dataset, a representation that encodes the same images the same
    way twice (checked on a few), and at most `limit_mb` of memory. A VAE's rows are its
    posterior's mean and log-variance, another model's its representation. The draws are
    those of encoding afresh; a code can differ from one encoded afresh in another batch by
    float32 rounding (bitwise equal for the MLP, within 1.5e-8 for conv64, whose kernels round
    a row by its place in the batch).
    """
    width = 2 * model.latent_dim if isinstance(model, VAEBase) else model.latent_dim
    needed = EncodedDataset.table_bytes(dataset, width) / 2**20
    if not dataset.finite:
        return "codes are encoded afresh: this dataset draws a nuisance anew for each scored image"
    if needed > limit_mb:
        return (
            f"codes are encoded afresh: a code table of this dataset takes {_mb(needed)}, "
            f"over the {_mb(limit_mb)} limit (--code-table-mb)"
        )
    if isinstance(model, VAEBase):
        posterior = posterior_function(model, batch_size=BATCH)

        def encode(images: np.ndarray) -> np.ndarray:
            return np.concatenate(posterior(images), axis=1)
    else:
        representation = representation_function(model, batch_size=BATCH)

        def encode(images: np.ndarray) -> np.ndarray:
            return representation(images).astype(np.float32)

    probe = dataset.observations(np.arange(min(len(dataset), 64)))
    if not np.array_equal(encode(probe), encode(probe), equal_nan=True):
        return "codes are encoded afresh: the representation encodes the same images differently"
    return EncodedDataset(dataset, encode, width)


def _mb(size: float) -> str:
    """A size in MB as people write it: 1,024 MB, 3.5 MB, 0.0002 MB."""
    return f"{size:,.0f} MB" if size >= 10 else f"{size:.2g} MB"


def _table_readers(model: Model) -> tuple[RepresentationFn, PosteriorFn | None]:
    """The codes and, for a VAE, the posterior, read from a code table's rows."""
    d = model.latent_dim

    def codes(rows: np.ndarray) -> np.ndarray:
        return rows[:, :d].astype(np.float64)

    def posterior(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows[:, :d], rows[:, d:]

    return codes, posterior if isinstance(model, VAEBase) else None


def _scored_dataset(
    model: Model, dataset: Dataset, code_table_mb: float, batch_size: int
) -> tuple[Dataset, RepresentationFn, PosteriorFn | None]:
    """What the metrics draw from and how they read it: a code table where one can be made,
    else the dataset and the model's encoder."""
    table = code_table(model, dataset, limit_mb=code_table_mb)
    if isinstance(table, EncodedDataset):
        return table, *_table_readers(model)
    if code_table_mb > 0:
        warnings.warn(table, UntwineWarning, stacklevel=3)
    posterior = (
        posterior_function(model, batch_size=batch_size) if isinstance(model, VAEBase) else None
    )
    return dataset, representation_function(model, batch_size=batch_size), posterior


def evaluate(
    run: str | Path | Model,
    dataset: Dataset | None = None,
    *,
    metrics: str | Iterable[str] = "all",
    seed: int = 0,
    samples: int = 10_000,
    dci_estimator: str = "fast",
    batch_size: int = 256,
    code_table_mb: float = 1024,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, float | list[float]]:
    """Score a run (a path, whose metrics.json is then written) or a model on `dataset`.

    As in the reference study: `samples` train and `samples // 2` test points are drawn afresh
    (seeded by `seed`); the BetaVAE and FactorVAE scores draw their own points with the same
    budget; Chen et al.'s MIG (`mig_chen`, the VAE family only) reads the posteriors of
    `samples` points of its own, and the critic's total correlation (`tc_critic`) z drawn
    from them (see `metrics.Inputs.latent_samples`). `dci_estimator` picks DCI's classifier (see
    `untwine.metrics.dci`). Model health (KL per dimension, active units, reconstruction,
    ELBO) is read on `samples // 2` held-out observations: the validation split where the
    dataset has one. A dataset without factors gets the code metrics and health only.
    On a finite dataset each drawn observation is encoded once into a code table of at most
    `code_table_mb` (0: never), with the same draws as encoding every draw (see `code_table`);
    otherwise, with a one-line warning, every draw is encoded afresh.
    Nothing here touches the global torch RNG.
    """
    run_dir = None if isinstance(run, torch.nn.Module) else Path(run)
    if run_dir is None and dataset is None:
        raise TypeError("evaluate(model) needs a dataset")
    if not code_table_mb >= 0:
        raise UntwineError(
            f"code_table_mb (--code-table-mb) must be 0 or more, got {code_table_mb}"
        )
    if run_dir is None:
        model = run
    else:
        _, model, trained_on = runs.open_run(run_dir, device, dataset=dataset is None)
        dataset = trained_on if dataset is None else dataset
    names = metrics_for(dataset, metrics, model, samples)
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    scored, encode, posterior = _scored_dataset(model, dataset, code_table_mb, batch_size)
    stages = tqdm(total=2 + len(names), disable=not progress, unit="stage", leave=False)

    def stage(name: str) -> None:
        stages.set_description(name)
        stages.update(1)

    results: dict[str, float | list[float]] = {}
    with stages:
        stage("encoding")
        results.update(
            m.measure(
                names,
                scored,
                encode,
                posterior=posterior,
                samples=samples,
                seed=seed,
                rng=rng,
                dci_estimator=dci_estimator,
                batch_size=batch_size,
                on_metric=stage,
            )
        )
        stage("health")
        held_out = dataset.held_out_indices(max(samples // 2, 2), rng)
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
        atomic_write(run_dir / runs.METRICS, (json.dumps(record, indent=2) + "\n").encode())
    return results


def agreement(
    run_dirs: Iterable[str | Path],
    *,
    samples: int = 10_000,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "cpu",
) -> list[float]:
    """Each run's UDR (`untwine.metrics.udr`) among `run_dirs`, runs of one setting that
    differ by seed: their representations of the same `samples` training observations
    (drawn with `seed` from the first run's data), with latents carrying under 0.01 nats on
    them (a VAE's KL, a quantised code's entropy) left out. Reads no factors."""
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    data = runs.read_config(run_dirs[0]).data
    dataset = load_dataset(data.name, **data.options)
    indices = dataset.sample_indices(samples, torch.Generator().manual_seed(seed))
    images = dataset.observations(indices)
    representations, information = [], []
    for run_dir in run_dirs:
        _, model, _ = runs.open_run(run_dir, device, dataset=False)
        if isinstance(model, VAEBase):  # its representation is the posterior mean: encode once
            mu, logvar = posterior_function(model, batch_size=batch_size)(images)
            representations.append(mu.astype(np.float64))
            kl = kl_normal(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).numpy()
            information.append(kl)
        else:
            codes = representation_function(model, batch_size=batch_size)(images)
            representations.append(codes)
            quantized = isinstance(model, QuantizedAE)  # its latents' entropies, else none
            information.append(m.discrete_entropy(codes) if quantized else None)
    return m.udr(representations, information)["scores"].tolist()
