"""The `untwine` command: parses and validates, then calls the Python API. Exit 2 on bad input."""

from __future__ import annotations

import inspect
import json
import socket
import sys
import warnings
import webbrowser
import zipfile
from pathlib import Path
from typing import Any

import click
import numpy as np

from untwine import runs
from untwine.allocator import reuse_freed_memory
from untwine.config import RunConfig, apply_overrides, check_seed, read_yaml, resolve_config
from untwine.data import DATASETS
from untwine.errors import UntwineError, UntwineWarning, os_error_message, os_error_reason
from untwine.files import atomic_write
from untwine.metrics import KINDS, METRICS, headline_keys, parse_metrics
from untwine.models import MODELS

# Each train flag is a shorthand for one config key; the YAML and `key=value` use the same names.
TRAIN_FLAGS = {
    "model": "model.name",
    "dataset": "data.name",
    "factors": "data.factors",
    "latent_dim": "model.latent_dim",
    "arch": "model.arch",
    "beta": "model.beta",
    "beta_schedule": "model.beta_schedule",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "device": "train.device",
    "eval_every": "train.eval_every",
    "eval_metrics": "train.eval_metrics",
    "grad_clip": "train.grad_clip",
    "precision": "train.precision",
}


def _factor_list(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--factors a,b` -> the override value `[a,b]`."""
    return f"[{value}]" if value else None


def _checked_seed(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """A seed every generator takes: 0 to 2^63 - 1, as train.seed."""
    check_seed(value, "--seed")
    return value


def seed_option(help_text: str | None = None) -> Any:
    """`--seed`, default 0, checked as every seed is."""
    return click.option(
        "--seed", type=int, callback=_checked_seed, default=0, show_default=True, help=help_text
    )


FACTORS_OPTION = click.option(
    "--factors",
    callback=_factor_list,
    help="Table columns that are ground-truth factors, comma-separated (for the metrics).",
)


class UntwineGroup(click.Group):
    """Turns user errors into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from untwine.train import TrainingDiverged, TrainingInterrupted

        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except UntwineError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except OSError as error:  # the file system said no: a path, a full disk, a permission
            click.echo(f"error: {os_error_message(error)}", err=True)
            sys.exit(2)
        except MemoryError as error:
            asked = f" ({error})" if str(error) else ""
            click.echo(
                f"error: not enough memory for this command{asked}; ask for less, e.g. a smaller "
                "--samples or train.batch_size",
                err=True,
            )
            sys.exit(2)
        except TrainingDiverged as failure:
            click.echo(f"\nerror: {failure}", err=True)
            sys.exit(1)
        except TrainingInterrupted as stop:
            click.echo(f"\n{stop}; run the same command again to resume", err=True)
            sys.exit(130)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one line, `warning: ...`; others as Python shows them."""
    if issubclass(category, UntwineWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True)


@click.group(cls=UntwineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="untwine")
def cli() -> None:
    """Disentangled representation learning: train, measure and see what each latent does."""
    reuse_freed_memory()


@cli.command(context_settings={"ignore_unknown_options": False})
@click.option("--model", help="Model name (see `untwine models`).  [default: betavae]")
@click.option(
    "--dataset",
    help="Dataset (see `untwine datasets`), or folder:DIR, array:FILE.npz, table:FILE.csv.  "
    "[default: dsprites]",
)
@FACTORS_OPTION
@click.option("--latent-dim", type=int, help="Number of latent dimensions.  [default: 10]")
@click.option(
    "--arch",
    type=click.Choice(["conv64", "conv64-deep", "conv64-style", "mlp"]),
    help="Encoder/decoder: the study's convnet, a deeper one, the study's encoder with a "
    "style-modulated decoder (QLAE's and Tripod's), or an MLP (model.hidden sizes it).  "
    "[default: mlp; infogan conv64]",
)
@click.option("--beta", type=float, help="KL weight, for models that have one.")
@click.option(
    "--beta-schedule",
    type=click.Choice(["constant", "linear", "cyclical"]),
    help="β-VAE: warm β up linearly or cyclically over model.beta_period steps.",
)
@click.option("--steps", type=int, help="Optimiser steps.  [default: 20000]")
@click.option("--batch-size", type=int, help="Images per step.  [default: 256; infogan 64]")
@click.option("--lr", type=float, help="Adam learning rate.  [default: 1e-3; infogan 2e-4]")
@click.option("--seed", type=int, help="Seed for weights, batches and noise.  [default: 0]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="[default: auto]")
@click.option("--grad-clip", type=float, help="Clip each objective's gradient norm (0: off).")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    help="bf16: the networks' matrix products in bfloat16 while training (about 2x faster "
    "where the CPU or GPU has bf16 units); weights and losses stay float32.  [default: fp32]",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML file with data/model/train sections; flags and overrides win over it.",
)
@click.option(
    "--out", type=click.Path(), help="Run directory.  [default: runs/MODEL-DATASET-sSEED]"
)
@click.option("--force", is_flag=True, help="Delete an existing run at --out and start over.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
def train(
    config_file: str | None,
    out: str | None,
    force: bool,
    no_progress: bool,
    overrides: tuple[str, ...],
    **flags: Any,
) -> None:
    """Train a model; resumes if --out holds an unfinished run of the same config.

    KEY=VALUE overrides any config key, e.g. model.beta=6 train.lr=5e-4 data.path=FILE.
    """
    from untwine.train import train as run_training
    from untwine.viz import traverse

    raw = read_yaml(config_file) if config_file else {}
    given = [f"{TRAIN_FLAGS[k]}={v}" for k, v in flags.items() if v is not None]
    config = resolve_config(apply_overrides(raw, [*given, *overrides]))
    run_dir = Path(out or f"runs/{config.model.name}-{_data_label(config)}-s{config.train.seed}")
    if not force and (runs.saved_step(run_dir) or 0) >= config.train.steps:
        click.echo(
            f"{run_dir} is already trained to step {config.train.steps} "
            "(--force retrains, a larger --steps continues)",
            err=True,
        )
    run_training(config, run_dir, force=force, progress=not no_progress)
    figure = traverse(run_dir)
    click.echo(f"run:       {run_dir}/")
    click.echo(f"traversal: {figure}")


def _data_label(config: RunConfig) -> str:
    """The dataset's name in a default run directory: `table-survey` for table:survey.csv."""
    path = config.data.options.get("path")
    return f"{config.data.name}-{Path(path).stem}" if path else config.data.name


DCI_OPTION = click.option(
    "--dci-estimator",
    type=click.Choice(["fast", "reference"]),
    default="fast",
    show_default=True,
    help="DCI's boosted trees: compiled (fast) or sklearn itself (reference, minutes).",
)


METRIC_HELP = "all, or a comma-separated subset of the names `untwine metrics` lists."


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--metrics", "names", default="all", show_default=True, help=METRIC_HELP)
@seed_option("Seed for sampled points.")
@DCI_OPTION
@click.option(
    "--samples",
    type=int,
    default=10_000,
    show_default=True,
    help="Train points (test: half as many); the study's 10,000.",
)
@click.option(
    "--code-table-mb",
    type=float,
    default=1024,
    show_default=True,
    help="Memory for the table that encodes each drawn observation once (0: encode every draw).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
def evaluate(
    run: str,
    names: str,
    seed: int,
    dci_estimator: str,
    samples: int,
    code_table_mb: float,
    device: str,
) -> None:
    """Score RUN with the chosen metrics; writes RUN/metrics.json and prints a table.

    On a finite dataset (every procedural grid, a user's files) each observation the metrics
    draw is encoded once, with the draws of encoding every draw (--code-table-mb 0).
    """
    from untwine.evaluate import evaluate as score_run
    from untwine.train import resolve_device

    if samples < 10:
        raise UntwineError(f"--samples must be at least 10, got {samples}")
    parse_metrics(names)
    runs.read_config(run)
    results = score_run(
        run,
        metrics=names,
        seed=seed,
        dci_estimator=dci_estimator,
        samples=samples,
        code_table_mb=code_table_mb,
        device=str(resolve_device(device)),
        progress=True,
    )
    width = max(map(len, results))
    for key, value in results.items():
        click.echo(f"{key:<{width}}  {_format(value)}")
    click.echo(f"written: {Path(run) / runs.METRICS}")


@cli.command()
@click.argument("file", type=click.Path())
@click.option(
    "--metrics",
    "names",
    default="all",
    show_default=True,
    help="all, or a comma-separated subset of the metrics `untwine metrics` lists as reading "
    "codes or latents.",
)
@seed_option("Seed for DCI's trees and the critic.")
@DCI_OPTION
def score(file: str, names: str, seed: int, dci_estimator: str) -> None:
    """Score any model's codes: FILE.npz holds `codes` (N x d) and `factors` (N x k indices).

    Optional `codes_test` and `factors_test` give the test split; otherwise the first
    ceil(0.9 N) rows train and the rest test. Optional `factor_names` (k strings) names MIG's
    per-factor terms. Without `factors`, the metrics that need none run (`untwine metrics`
    says which). Prints one JSON object.
    """
    from untwine.metrics import score as score_arrays

    arrays = _read_npz(file)
    if "codes" not in arrays:
        raise UntwineError(f"{file} has no 'codes' array; it needs codes, and factors to score all")
    results = score_arrays(
        arrays["codes"],
        arrays.get("factors"),
        arrays.get("codes_test"),
        arrays.get("factors_test"),
        metrics=names,
        seed=seed,
        dci_estimator=dci_estimator,
        factor_names=_factor_names(arrays, file),
    )
    click.echo(json.dumps(results, indent=2))


def _factor_names(arrays: dict[str, np.ndarray], file: str) -> list[str] | None:
    """The optional `factor_names` array of a scores file, as strings."""
    if "factor_names" not in arrays:
        return None
    names = arrays["factor_names"]
    if names.ndim != 1 or names.dtype.kind != "U":
        raise UntwineError(f"{file}: factor_names must be a 1-d array of strings, one per factor")
    return names.tolist()


def _format(value: float | int | list[float]) -> str:
    if isinstance(value, list):
        return ", ".join(f"{v:.3f}" for v in value)
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _read_npz(file: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, read without pickles."""
    unreadable = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
    try:
        loaded = np.load(file, allow_pickle=False)
    except unreadable as error:
        raise UntwineError(f"cannot read {file}: {_npz_problem(error)}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise UntwineError(
            f"{file} holds one array; save codes and factors together with "
            "np.savez(FILE, codes=..., factors=...)"
        )
    with loaded as archive:
        try:
            return {key: archive[key] for key in archive.files}
        except unreadable as error:
            raise UntwineError(f"cannot read {file}: {_npz_problem(error)}") from None


def _npz_problem(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return os_error_reason(error)
    if isinstance(error, zipfile.BadZipFile | EOFError | KeyError):
        return "not a complete .npz file (cut short, or not an npz)"
    return "not an .npz of plain arrays"


@cli.command()
@click.argument("run", type=click.Path())
@seed_option("Which input image to traverse.")
def traverse(run: str, seed: int) -> None:
    """Redraw RUN/figures/traversal.png: latents by KL in rows, values -2.5..2.5 in columns."""
    from untwine.viz import traverse as draw

    click.echo(draw(run, seed=seed))


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--n", "count", type=click.IntRange(1, 1024), default=64, show_default=True)
@seed_option()
@click.option("--out", type=click.Path(dir_okay=False), help="[default: RUN/figures/samples.png]")
def sample(run: str, count: int, seed: int, out: str | None) -> None:
    """Draw N observations from RUN's model: decoded prior samples (VAEs) or G's (InfoGAN).

    Images go to a PNG grid; a table's rows go to a CSV in the table's units.
    """
    from untwine.data import load_dataset
    from untwine.viz import model_sample_rows, model_samples, save_png

    config, model, _ = runs.open_run(run, dataset=False)
    if len(model.observation_shape) > 1:
        image = model_samples(model, count, seed=seed)
        path = save_png(image, out or runs.figures_dir(Path(run)) / "samples.png")
    else:  # a table's units come from its dataset
        dataset = load_dataset(config.data.name, **config.data.options)
        names, rows = model_sample_rows(model, dataset, count, seed=seed)
        text = ",".join(names) + "\n" + "\n".join(",".join(f"{v:.6g}" for v in r) for r in rows)
        path = Path(out or Path(run) / "samples.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (text + "\n").encode())
    click.echo(f"{count} samples: {path}")


@cli.command()
@click.argument("run", type=click.Path())
@seed_option("Inputs and samples shown.")
def report(run: str, seed: int) -> None:
    """Write every figure into RUN/figures and one self-contained RUN/report.html.

    Given a study directory (what `untwine sweep` writes), write STUDY/report.html instead:
    the study's scores over seeds, how the metrics agree, what explains them, UDR's choices.
    """
    if (Path(run) / "study.db").is_file():
        from untwine.sweep.report import study_report

        click.echo(study_report(run))
        return
    from untwine.report import report as write_report

    runs.read_config(run)
    click.echo(write_report(run, seed=seed))


def _print_plan(study: Any, out_dir: Path, workers: int, only: tuple[str, ...]) -> None:
    """The cost of a study's remaining runs, setting by setting, measured on this machine."""
    from untwine.sweep.plan import plan_study
    from untwine.sweep.pool import worker_threads

    costs = plan_study(study, out_dir, workers=workers, only=only)
    if not costs:
        chosen = f" matching {' or '.join(only)}" if only else ""
        click.echo(f"{study.name}: every run{chosen} is done in {out_dir}")
        return
    width = max(len("setting"), *(len(c.setting) for c in costs))
    click.echo(f"{'setting':<{width}} {'runs':>4} {'images/s':>9} {'train':>8} {'score':>8}")
    for c in costs:
        click.echo(
            f"{c.setting:<{width}} {c.runs:>4} {c.images_per_s:>9.0f} "
            f"{_duration(c.train_s):>8} {_duration(c.score_s):>8}"
            + (f"  (+{c.rescored} finished, to score only)" if c.rescored else "")
        )
    total = sum(c.total_s for c in costs)
    runs = sum(c.runs for c in costs)
    rescored = sum(c.rescored for c in costs)
    scoring = f" and {rescored} to score again" if rescored else ""
    click.echo(
        f"{runs} runs left{scoring}: {_duration(total)} of one worker, about "
        f"{_duration(total / workers)} "
        f"with --workers {workers} (each on {_count(worker_threads(workers), 'thread')}; "
        "measured now, so other work on this machine slows the estimate)"
    )


def _count(n: int, noun: str) -> str:
    """1 thread, 2 threads."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration(seconds: float) -> str:
    """Seconds as people read them: 40 s, 12.5 min, 3.2 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


@cli.command()
@click.argument("study_file", metavar="STUDY.yaml", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(), help="Study directory.  [default: studies/NAME]")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where runs train: worker processes on this machine, or tasks on a Ray cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Runs trained at once: local, each on its share of the cores (default 1); "
    "ray, at most this many (default: as many as the cluster fits, one CPU each).",
)
@click.option(
    "--address",
    help="Ray: the cluster's address (default: RAY_ADDRESS, or `ray start` on this machine, "
    "else a cluster of this machine alone; `local` always the latter).",
)
@click.option(
    "--wait", is_flag=True, help="If another sweep is running this study, start when it ends."
)
@click.option(
    "--plan",
    is_flag=True,
    help="Train nothing: time each setting still to run for a few steps, and its scoring "
    "once, and print what the study will cost on this machine.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="PATTERN",
    help="Train only the runs whose names match this shell-style pattern (`adagvae-*`, "
    "`*-s0`); repeat for several. The tables still list every run.",
)
def sweep(
    study_file: str,
    out: str | None,
    backend: str,
    workers: int | None,
    address: str | None,
    wait: bool,
    plan: bool,
    only: tuple[str, ...],
) -> None:
    """Train and score every run of a study (models x hyperparameters x seeds).

    Results land in the study directory: study.db (every run's status, config and scores),
    results.csv, results.md (mean ± std over seeds) and runs/NAME. Run the same command again
    to resume: finished runs are kept, interrupted ones continue from their checkpoints, failed
    ones are tried again; finished runs are scored (not retrained) for a metric added to the
    study. On a Ray cluster, the study directory must be on storage that every
    node sees.
    """
    from untwine.sweep import load_study, run_study

    if address and backend != "ray":
        raise UntwineError("--address names a Ray cluster; it needs --backend ray")
    study = load_study(study_file)
    out_dir = Path(out or f"studies/{study.name}")
    if plan:
        _print_plan(study, out_dir, workers or 1, only)
        return
    ended = 0

    def show(row: dict[str, Any], left: int) -> None:
        nonlocal ended
        ended += 1
        count = f"[{ended}/{ended + left}]"
        if row["status"] == "failed":
            click.echo(f"{count} {row['name']}: failed: {row['error']}", err=True)
            return
        scores = [f"{k} {row['metrics'][k]:.3f}" for k in headline_keys() if k in row["metrics"]]
        click.echo(f"{count} {row['name']}: done in {row['train_s']:.0f} s  {', '.join(scores)}")

    def start(names: list[str], jobs: int | None, rescored: list[str]) -> None:
        where = "as Ray tasks" if jobs is None else f"{jobs} at a time"
        where += " on the Ray cluster" if backend == "ray" and jobs else ""
        scoring = (
            f" and scoring {len(rescored)} finished for the metrics they lack" if rescored else ""
        )
        click.echo(
            f"{study.name}: training {len(names) - len(rescored)} of {len(study.runs)} runs"
            f"{scoring}, {where}; each prints a line as it ends, and "
            f"{out_dir / 'results.md'} gains it",
            err=True,
        )

    try:
        rows = run_study(
            study,
            out_dir,
            workers=workers,
            backend=backend,
            address=address,
            progress=True,
            on_start=start,
            on_result=show,
            wait=wait,
            only=only,
        )
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted: the finished runs are in {out_dir / 'study.db'}; "
            "run the same command again to resume the rest",
            err=True,
        )
        sys.exit(130)
    click.echo(f"results:   {out_dir / 'results.md'} (every score: results.csv)")
    failed = [row["name"] for row in rows if row["status"] == "failed"]
    if failed:
        click.echo(
            f"error: {len(failed)} of {len(rows)} runs failed ({', '.join(failed)}); their errors "
            "are in results.md, and the same command tries them again",
            err=True,
        )
        sys.exit(1)


@cli.command()
def models() -> None:
    """List the models and their options with defaults."""
    for name in MODELS:
        model = MODELS.get(name)
        click.echo(f"{name}: {_first_line(model)}")
        for key, param in MODELS.options(name).items():
            default = param.default
            if default is inspect.Parameter.empty:
                default = "(from the dataset)"
            elif key == "latent_dim" and default is None:  # as training sizes it
                default = "(twice the dataset's factors)"
            click.echo(f"    {key} = {default}")
        for key, value in getattr(model, "train_defaults", {}).items():
            click.echo(f"    train.{key} = {value} (this model's default)")


@cli.command("metrics")
def list_metrics() -> None:
    """List the metrics: what each reads, what it needs, the keys it writes and what they mean."""
    for name, metric in METRICS.items():
        needs = ["factors" if metric.needs_factors else "no factors"]
        if metric.min_codes > 2:  # every metric needs two
            needs.append(f"at least {metric.min_codes} points")
        sources = f" ({'; '.join(metric.references)})" if metric.references else ""
        better = f"{metric.main}: {metric.better} is better"
        click.echo(f"{name}: {KINDS[metric.kind]}; needs {', '.join(needs)}; {better}{sources}")
        for key, meaning in metric.meanings.items():
            click.echo(f"    {key}: {meaning}")
        if metric.per_factor:
            click.echo(f"    {name}.<factor>: {metric.per_factor.format(factor='<factor>')}")


@cli.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """List the datasets with their factors, sizes and options (`datasets show NAME`: look)."""
    if ctx.invoked_subcommand is not None:
        return
    for name in DATASETS:
        dataset = DATASETS.get(name)
        click.echo(f"{name}: {_first_line(dataset)}")
        if hasattr(dataset, "observation_shape"):
            factors = ", ".join(
                f"{n} {s}" for n, s in zip(dataset.factor_names, dataset.factor_sizes, strict=True)
            )
            shape = "x".join(map(str, dataset.observation_shape))
            click.echo(f"    image {shape}; factors: {factors}")
        else:
            click.echo(f"    use as --dataset {name}:PATH; shape and factors from the data")
        for key, param in DATASETS.options(name).items():
            default = "(required)" if param.default is inspect.Parameter.empty else param.default
            click.echo(f"    data.{key} = {default}")


@datasets.command("show")
@click.argument("name")
@click.argument("overrides", nargs=-1, metavar="[data.KEY=VALUE]...")
@FACTORS_OPTION
@click.option("--n", "count", type=click.IntRange(1, 1024), default=32, show_default=True)
@seed_option()
@click.option(
    "--pairs",
    type=int,
    help="Draw N pairs that differ in this many factors (-1: 1..F-1, drawn for each pair), "
    "each image above its partner: what weakly supervised models learn from.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="[default: NAME-samples.png]")
def datasets_show(
    name: str,
    overrides: tuple[str, ...],
    factors: str | None,
    count: int,
    seed: int,
    pairs: int | None,
    out: str | None,
) -> None:
    """Write a grid of N training images from NAME, drawn as the trainer draws them.

    For a table, print its first N training rows as the model sees them (standardised).
    """
    from untwine.data import GroundTruthDataset, load_dataset
    from untwine.viz import dataset_head, dataset_pairs, dataset_samples, save_png

    given = [f"data.name={name}", *([f"data.factors={factors}"] if factors else [])]
    config = resolve_config(apply_overrides({}, [*given, *overrides]))
    dataset = load_dataset(config.data.name, **config.data.options)
    for note in dataset.notes:
        click.echo(f"data: {note}")
    if len(dataset.observation_shape) == 1:
        click.echo(dataset_head(dataset, count, seed=seed))
        return
    label = name.split(":")[0]
    if pairs is not None:
        dataset.check_pairs(pairs, "--pairs")
        figure = dataset_pairs(dataset, count, pairs, seed=seed)
        path = save_png(figure, out or f"{label}-pairs.png")
        differ = {-1: "1..F-1 factors, drawn for each pair", 1: "1 factor"}.get(
            pairs, f"{pairs} factors"
        )
        grid = isinstance(dataset, GroundTruthDataset)
        what = f"that differ in {differ}" if grid else "as the data pairs them"
        click.echo(f"{count} pairs of {name} {what}: {path}")
        return
    path = save_png(dataset_samples(dataset, count, seed=seed), out or f"{label}-samples.png")
    click.echo(
        f"{count} images of {name} ({'x'.join(map(str, dataset.observation_shape))}): {path}"
    )


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="RUN... | STUDY_DIR")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port (0: any free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--sort", "sort_key", help="A study's runs by this score, best first (e.g. mig).")
@click.option("--top", type=click.IntRange(min=1), help="Show only the first N runs.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True
)
def explore(
    targets: tuple[str, ...],
    host: str,
    port: int,
    open_browser: bool,
    sort_key: str | None,
    top: int | None,
    device: str,
) -> None:
    """Turn trained models' knobs in the browser: a local page with a slider per latent.

    Several runs (or a study directory's runs) show side by side on the same input.
    """
    try:
        import uvicorn

        from untwine.explore.app import create_app
    except ImportError:
        raise UntwineError(
            'the explorer needs FastAPI and uvicorn: pip install "untwine[explore]"'
        ) from None
    from untwine.explore import Explorer
    from untwine.train import resolve_device

    chosen = _runs_to_explore(targets, sort_key)[:top]
    app = create_app(Explorer(chosen, str(resolve_device(device))))
    server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((host, port))
    except OSError as error:
        raise UntwineError(
            f"cannot listen on {host}:{port} ({os_error_reason(error)}); try --port 0"
        ) from None
    url = f"http://{host if ':' not in host else f'[{host}]'}:{server.getsockname()[1]}/"
    if host not in ("127.0.0.1", "localhost", "::1"):
        warnings.warn(
            f"listening on {host}: anyone who reaches this machine can use the explorer",
            UntwineWarning,
            stacklevel=1,
        )
    click.echo(f"explorer: {url}  ({len(chosen)} run(s); Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(url)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[server])


def _runs_to_explore(targets: tuple[str, ...], sort_key: str | None) -> list[Path]:
    """The run directories named, a study directory's runs in their place; sorted if asked."""
    chosen: list[Path] = []
    for target in map(Path, targets):
        study_runs = target / "runs"
        if not runs.is_run(target) and study_runs.is_dir():
            chosen += sorted(p for p in study_runs.iterdir() if runs.is_run(p))
        else:
            chosen.append(target)
    if sort_key:
        scored = [(runs.read_metrics(p) or {}).get(sort_key) for p in chosen]
        if all(score is None for score in scored):
            raise UntwineError(f"no run has a {sort_key!r} score; run untwine evaluate first")
        order = sorted(range(len(chosen)), key=lambda i: -(scored[i] or float("-inf")))
        chosen = [chosen[i] for i in order]
    return chosen


def _first_line(obj: object) -> str:
    return (inspect.getdoc(obj) or "").splitlines()[0]


def main() -> None:
    cli(prog_name="untwine")


if __name__ == "__main__":
    main()
