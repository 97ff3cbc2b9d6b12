"""The training loop: the only one. It never asks which model it runs."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from untwine import runs
from untwine.config import RunConfig, first_difference
from untwine.data import Dataset, load_dataset, to_tensor
from untwine.errors import UntwineError, UntwineWarning
from untwine.evaluate import evaluate
from untwine.models import MODELS, Autoencoder, Model, create_model
from untwine.train import checkpoint


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UntwineError(
            "device cuda was asked for, but torch sees no CUDA device; use cpu or auto"
        )
    return torch.device(name)


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def make_optimizers(
    objectives: dict[str, dict[str, Any]], lr: float
) -> dict[str, torch.optim.Optimizer]:
    """One optimiser per objective a model declares (Adam unless it names `adamw`); options it
    names override the run's lr.

    An objective may limit weight decay to some of its parameters (`weights`; the others get
    none), bound the gradients of some (`clipped`) element-wise at `clip_value` (the loop does
    it), and ask for `steps` optimiser steps per training step, with `again` giving its loss
    for each step after the first (a critic catching up with its target).
    """
    optimizers = {}
    for key, spec in objectives.items():
        options = {"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, **spec.get("options", {})}
        params = spec["params"]
        if "weights" in spec:
            decayed = {id(p) for p in spec["weights"]}
            params = [
                {"params": [p for p in params if id(p) in decayed]},
                {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0},
            ]
        optimizers[key] = OPTIMIZERS[spec.get("optimizer", "adam")](params, **options)
    return optimizers


def sample_batch(
    dataset: Dataset,
    size: int,
    generator: torch.Generator,
    device: torch.device,
    pair_k: int | None = None,
) -> torch.Tensor:
    """A batch of `size` training observations (the dataset says how they are drawn), float
    (B, C, H, W) or (B, F). With `pair_k`, size / 2 first observations, then their partners."""
    if pair_k is None:
        indices = dataset.sample_indices(size, generator)
    else:
        indices = np.concatenate(dataset.sample_pairs(size // 2, pair_k, generator))
    return to_tensor(dataset.observations(indices), device)


def build(config: RunConfig, dataset: Dataset) -> tuple[RunConfig, Model]:
    """The model for `config` on `dataset`, and the config with data-derived options filled in.

    Options a model takes from the data (`observation_shape`, and `dataset_size` for the
    estimators that need N) are set here; a user-given value must agree with the data. A model
    whose `latent_dim` defaults to None gets twice the data's factors, unless one is given.
    The model trains in `train.precision`.
    """
    derived = {"observation_shape": list(dataset.observation_shape), "dataset_size": len(dataset)}
    accepted = MODELS.options(config.model.name)
    options = dict(config.model.options)
    for key, value in derived.items():
        if key not in accepted:
            continue
        given = options.get(key)
        if given is not None and _as_list(given) != _as_list(value):
            raise UntwineError(f"model.{key} {given} does not match the data's {value}")
        options[key] = value
    sized_by_data = "latent_dim" in accepted and accepted["latent_dim"].default is None
    if sized_by_data and options.get("latent_dim") is None:
        options["latent_dim"] = 2 * len(dataset.factor_names) or 10  # twice the factors
    model = create_model(config.model.name, **options)
    if config.train.precision == "bf16":
        if not isinstance(model, Autoencoder):
            raise UntwineError(
                f"train.precision bf16 is for autoencoders (every VAE, pair and quantised "
                f"model); {config.model.name} trains in fp32"
            )
        model.train_dtype = torch.bfloat16
    if model.pair_k is not None:
        dataset.check_pairs(model.pair_k, "model.k")
        if config.train.batch_size % 2:
            raise UntwineError(
                f"train.batch_size counts both observations of each pair: a pair model needs "
                f"an even number, got {config.train.batch_size}"
            )
    return replace(config, model=replace(config.model, options=options)), model


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def train(
    config: RunConfig, run_dir: str | Path, *, force: bool = False, progress: bool = True
) -> Path:
    """Train `config` into `run_dir`, resuming from its checkpoint if one is there.

    A finished run is left as it is; `force=True` deletes the run's files and starts over.
    Returns the run directory.
    """
    run_dir = Path(run_dir)
    dataset = load_dataset(config.data.name, **config.data.options)
    torch.manual_seed(config.train.seed)
    config, model = build(config, dataset)  # bad data or options: no folder made
    previous = _prepare_run_dir(run_dir, config, force)
    resuming = previous is not None
    config = _with_threads(config, previous, run_dir)
    device = resolve_device(config.train.device)
    for note in dataset.notes if progress else ():
        tqdm.write(f"data: {note}", file=sys.stderr)
    model.to(device)
    objectives = model.objectives()
    optimizers = make_optimizers(objectives, config.train.lr)
    sampler = torch.Generator().manual_seed(config.train.seed)

    state = runs.load_state(run_dir, device) if resuming else None
    start = checkpoint.restore(state, run_dir, model, optimizers, sampler) if state else 0
    if state and runs.saved_step(run_dir) != start:  # killed between a checkpoint's writes
        runs.save_weights(run_dir, model, start)
    if start > config.train.steps:
        raise UntwineError(
            f"{run_dir} is already at step {start}, past train.steps={config.train.steps}"
        )
    runs.save_config(run_dir, config)
    if start == config.train.steps:
        return run_dir
    runs.truncate_log(run_dir, start)
    shortfall = model.schedule_shortfall(config.train.steps)
    if shortfall:
        warnings.warn(shortfall, UntwineWarning, stacklevel=2)

    cfg = config.train
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        unit="step",
        desc=run_dir.name,
        disable=not progress,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    model.train()
    log = _LogAccumulator(cfg.batch_size)
    postfix: dict[str, str] = {}
    with _deferred_interrupt() as interrupted, bar, _flush_denormals(), cpu_threads(cfg.threads):
        for step in range(start, cfg.steps):
            x = sample_batch(dataset, cfg.batch_size, sampler, device, model.pair_k)
            if step == start:
                model.check_data(x)  # at the door: the first batch the model will see
            terms = model.loss(x, step)
            _stop_if_not_finite(terms, optimizers, step + 1, run_dir)
            for i, (key, optimizer) in enumerate(optimizers.items()):  # "loss" first
                spec = objectives[key]
                for repeat in range(spec.get("steps", 1)):
                    loss = terms[key] if repeat == 0 else spec["again"]()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward(retain_graph=repeat == 0 and i < len(optimizers) - 1)
                    if "clip_value" in spec:  # the model's own element-wise bound
                        torch.nn.utils.clip_grad_value_(spec["clipped"], spec["clip_value"])
                    if cfg.grad_clip:
                        params = [p for group in optimizer.param_groups for p in group["params"]]
                        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    optimizer.step()

            done = step + 1
            log.add(terms)
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                record = log.flush(done)
                runs.append_log(run_dir, record)
                postfix.update(_postfix(record))
                bar.set_postfix(postfix, refresh=False)
            if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
                started = time.perf_counter()
                scores = evaluate(
                    model,
                    dataset,
                    metrics=cfg.eval_metrics,
                    seed=cfg.seed,
                    samples=cfg.eval_samples,
                )
                runs.append_log(run_dir, {"step": done, "eval": scores})
                postfix.update(_postfix(scores))
                bar.set_postfix(postfix, refresh=False)
                log.tick += time.perf_counter() - started  # evaluation is not training time
            if done % cfg.checkpoint_every == 0 or done == cfg.steps or interrupted.is_set():
                state = checkpoint.capture(done, model, optimizers, sampler)
                checkpoint.save(run_dir, state, model)
            if interrupted.is_set() and done < cfg.steps:
                raise TrainingInterrupted(done)
    return run_dir


class _LogAccumulator:
    """Sums each loss term on its device (no sync per step) and reports means per log line."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.tick = time.perf_counter()

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0) + value.detach()
        self.count += 1

    def flush(self, step: int) -> dict[str, float | list[float]]:
        elapsed = time.perf_counter() - self.tick
        record = {
            "step": step,
            **{k: _round((v / self.count).tolist()) for k, v in self.sums.items()},
        }
        record["images_per_s"] = round(self.count * self.batch_size / elapsed, 1)
        self._reset()
        return record


def _round(value: float | list[float]) -> float | list[float]:
    """Six significant digits: plenty for a log, and it keeps log.jsonl readable."""
    if isinstance(value, list):
        return [float(f"{v:.6g}") for v in value]
    return float(f"{value:.6g}")


def _postfix(record: dict) -> dict[str, str]:
    """The scalar terms of a log record, short, for the progress bar."""
    return {k: f"{v:.4g}" for k, v in record.items() if isinstance(v, float)}


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the weights of that step were not applied or saved."""


def _stop_if_not_finite(
    terms: dict[str, torch.Tensor], objectives: Iterable[str], step: int, run_dir: Path
) -> None:
    """Stop at the step an objective turns NaN/Inf, naming the terms; the checkpoint is kept."""
    if all(bool(torch.isfinite(terms[key]).all()) for key in objectives):
        return
    bad = [k for k, v in terms.items() if not bool(torch.isfinite(v.detach()).all())]
    saved = runs.trained_steps(run_dir)
    runs.append_log(run_dir, {"step": step, "diverged": bad})  # the report warns of it
    raise TrainingDiverged(
        f"training stopped at step {step}: {', '.join(bad)} not finite; the last checkpoint "
        f"(step {saved}) is kept in {run_dir}. Try a lower train.lr or train.grad_clip=1.0"
    )


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C arrived; the step in progress finished and a checkpoint was saved."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint saved")
        self.step = step


def _with_threads(config: RunConfig, previous: RunConfig | None, run_dir: Path) -> RunConfig:
    """`train.threads` as the run uses and records it: the CPU's sums depend on the count, so
    a resume keeps the one the run trained with; 0 becomes this process's count."""
    threads, before = config.train.threads, previous.train.threads if previous else 0
    if before and threads and threads != before:
        warnings.warn(
            f"{run_dir} trained with train.threads={before}; resuming with {threads}, its "
            "numbers will differ from an uninterrupted run's",
            UntwineWarning,
            stacklevel=3,
        )
    threads = threads or before or torch.get_num_threads()
    return replace(config, train=replace(config.train, threads=threads))


@contextlib.contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Run torch on `count` CPU threads, and give the process its own count back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _flush_denormals() -> Iterator[None]:
    """Subnormal floats count as zero while training (tiny activations slow CPUs up to 1.6x)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[threading.Event]:
    """Turn SIGINT into a flag the loop reads between steps, so no step is left half-done."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda *_: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _prepare_run_dir(run_dir: Path, config: RunConfig, force: bool) -> RunConfig | None:
    """Create `run_dir`, or check that it holds this same run; the config it holds when
    resuming one, None for a fresh start."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UntwineError(f"output path {run_dir} is a file; give a directory for the run")
    resuming = runs.is_run(run_dir)
    cut_writes = [p for name in runs.RUN_FILES for p in run_dir.glob(f".{name}.tmp*")]
    if not resuming and run_dir.is_dir() and set(run_dir.iterdir()) - set(cut_writes):
        raise UntwineError(f"{run_dir} exists and is not an untwine run; choose another --out")
    for leftover in cut_writes:  # a write a kill cut short left its temporary file behind
        leftover.unlink()
    runs.check_figures(run_dir)
    if force and resuming:  # only what untwine wrote; a user's own files stay
        in_the_way = [name for name in runs.RUN_FILES if (run_dir / name).is_dir()]
        if in_the_way:
            raise UntwineError(
                f"{run_dir / in_the_way[0]} is a folder, which untwine did not write; "
                "--force deletes only untwine's files: move it away"
            )
        for name in runs.RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / runs.FIGURES, ignore_errors=True)
        resuming = False
    if not resuming:
        run_dir.mkdir(parents=True, exist_ok=True)
        return None
    previous = runs.read_config(run_dir)
    _check_same_run(run_dir, previous, config)
    return previous


def _check_same_run(run_dir: Path, previous: RunConfig, config: RunConfig) -> None:
    """A resume must not change what is being trained; say which option differs."""
    difference = first_difference(previous.to_dict(), config.to_dict())
    if difference:
        key, was, now = difference
        raise UntwineError(
            f"{run_dir} holds a run with {key}={was!r}, not {now!r}; "
            "use --force to start over or another --out"
        )
