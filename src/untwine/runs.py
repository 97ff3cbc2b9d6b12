"""The run directory: config.yaml, model.safetensors, state.pt, log.jsonl, figures/."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from untwine.config import RunConfig, read_yaml, resolve_config, write_yaml
from untwine.data import Dataset, load_dataset
from untwine.errors import UntwineError
from untwine.files import atomic_write
from untwine.models import Model, create_model

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
LOG = "log.jsonl"
METRICS = "metrics.json"
FIGURES = "figures"
RUN_FILES = (CONFIG, WEIGHTS, STATE, LOG, METRICS)
STATE_KEYS = ("step", "model", "optimizers", "sampler_rng", "torch_rng")
# what to do about a damaged file, said in its error ({run}: the run directory)
RETRAIN = "retrain with `untwine train --force --out {run}`"
REWRITE_WEIGHTS = "rerun `untwine train --out {run}` to rewrite it from state.pt"
CANNOT_RESUME = "the run cannot resume from it: " + RETRAIN
CONFIG_HEADER = "# untwine run: the resolved config this run trains (written by untwine train)\n"


def save_config(run_dir: Path, config: RunConfig) -> None:
    atomic_write(run_dir / CONFIG, (CONFIG_HEADER + write_yaml(config)).encode())


def is_run(run_dir: Path) -> bool:
    """Whether untwine wrote this folder's config.yaml: its header, or (for runs from before
    the header) a log, state or weights of untwine's beside it."""
    config = run_dir / CONFIG
    if not config.is_file():
        return False
    with open(config, "rb") as file:
        if file.readline() == CONFIG_HEADER.encode():
            return True
    return any((run_dir / name).is_file() for name in (WEIGHTS, STATE, LOG))


def read_config(run_dir: str | Path) -> RunConfig:
    """The resolved config of a run directory."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise UntwineError(f"{run_dir} is not an untwine run (no {CONFIG})")
    raw = read_yaml(path)
    if not raw:
        raise damaged(path, "it is empty", RETRAIN)
    try:
        return resolve_config(raw)
    except UntwineError as error:
        raise damaged(path, str(error), RETRAIN) from None


def damaged(path: Path, what: str, remedy: str) -> UntwineError:
    """The one-line error for a run file that cannot be used: which, what is wrong, what to do."""
    return UntwineError(f"{path} is damaged ({what}); {remedy.format(run=path.parent)}")


def save_weights(run_dir: Path, model: Model, step: int) -> None:
    """Weights as safetensors (never pickle), with the step in the metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(run_dir / WEIGHTS, save(tensors, metadata={"step": str(step)}))


def load_weights(run_dir: Path, model: Model) -> None:
    """Load `model.safetensors` into `model`, or say what is wrong with the file."""
    path = run_dir / WEIGHTS
    if not path.exists():
        raise UntwineError(f"{run_dir} has no {WEIGHTS} yet: training has not saved a checkpoint")
    if not path.is_file():
        raise damaged(path, "a folder, not a file", REWRITE_WEIGHTS)
    try:
        tensors = load_file(path)
    except SafetensorError as error:
        raise damaged(path, _unreadable(error), REWRITE_WEIGHTS) from None
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise damaged(path, f"{broken[0]} holds NaN or infinite weights", RETRAIN)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise UntwineError(
            f"{path} does not fit {run_dir / CONFIG} ({misfit(error)}); was the config edited? "
            f"Restore it, or {RETRAIN.format(run=run_dir)}"
        ) from None


def misfit(error: Exception) -> str:
    """The first line that says what went wrong (load_state_dict's first only names the model)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):
        lines = lines[1:]
    return (lines or [type(error).__name__])[0].rstrip(".:")[:160]


def trained_steps(run_dir: str | Path) -> int:
    """The step of the run's saved weights (0 if none), read from the safetensors metadata."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        return 0
    try:
        with safe_open(path, framework="pt") as weights:
            return int((weights.metadata() or {}).get("step", 0))
    except (SafetensorError, ValueError) as error:
        raise damaged(path, _unreadable(error), REWRITE_WEIGHTS) from None


def _unreadable(error: Exception) -> str:
    """Why safetensors refused a file, without its parser's preamble."""
    return str(error).replace("Error while deserializing header: ", "unreadable header: ")


def saved_step(run_dir: str | Path) -> int | None:
    """The step of the run's saved weights; None if there are none or they cannot be read."""
    try:
        return trained_steps(run_dir) if (Path(run_dir) / WEIGHTS).is_file() else None
    except UntwineError:
        return None


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Trainer state (weights, optimiser, RNG, step) in one file, so a resume is consistent."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(run_dir / STATE, buffer.getvalue())


def load_state(run_dir: Path, device: torch.device) -> dict[str, Any] | None:
    """The trainer state, loaded with `weights_only=True`, or None if there is none yet."""
    path = run_dir / STATE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch says "damaged" in many ways (zip, pickle, EOF, refusals)
        raise damaged(path, _unloadable(error), CANNOT_RESUME) from None
    if not isinstance(state, dict) or not all(key in state for key in STATE_KEYS):
        raise damaged(path, "not a checkpoint untwine wrote", CANNOT_RESUME)
    return state


def _unloadable(error: Exception) -> str:
    """Why torch.load refused a file, in words (its own messages run to paragraphs)."""
    if isinstance(error, IsADirectoryError):
        return "a folder, not a file"
    if isinstance(error, EOFError):
        return "it is empty or cut short"
    if isinstance(error, pickle.UnpicklingError):
        return "it holds objects a safe load refuses, or is not a torch file"
    if "zip archive" in str(error):
        return "not a complete torch file: cut short or overwritten"
    return type(error).__name__


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> Model:
    """Rebuild a run's model from `config.yaml` and `model.safetensors`, in eval mode."""
    return open_run(run_dir, device, dataset=False)[1]


def open_run(
    run_dir: str | Path, device: str | torch.device = "cpu", *, dataset: bool = True
) -> tuple[RunConfig, Model, Dataset | None]:
    """A run's config, its model (in eval mode, on `device`) and the dataset it trained on
    (None with `dataset=False`)."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model = create_model(config.model.name, **config.model.options)
    load_weights(run_dir, model)
    data = load_dataset(config.data.name, **config.data.options) if dataset else None
    if data is not None and tuple(data.observation_shape) != tuple(model.observation_shape):
        raise UntwineError(
            f"{run_dir / CONFIG} names data {config.data.name!r}, whose observations are "
            f"{tuple(data.observation_shape)}, but the model was built for "
            f"{tuple(model.observation_shape)}; was the config edited? Restore it"
        )
    return config, model.to(device).eval(), data


def append_log(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to log.jsonl."""
    with open(run_dir / LOG, "a") as file:
        file.write(json.dumps(record) + "\n")


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete record of log.jsonl; a line a kill cut short (or damage) is skipped."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The scores in metrics.json, or None if the run has not been evaluated."""
    path = run_dir / METRICS
    if not path.exists():
        return None
    remedy = "rerun `untwine evaluate {run}` to rewrite it"
    try:
        record = json.loads(path.read_bytes())
    except IsADirectoryError:
        raise damaged(path, "a folder, not a file", remedy) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise damaged(path, "not JSON", remedy) from None
    if not isinstance(record, dict):
        raise damaged(path, "not a mapping of scores", remedy)
    return record


def figures_dir(run_dir: Path) -> Path:
    """RUN/figures, created if need be."""
    check_figures(run_dir)
    figures = run_dir / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    return figures


def check_figures(run_dir: Path) -> None:
    """A file where RUN/figures goes is a one-line error (before any work is spent)."""
    figures = run_dir / FIGURES
    if figures.exists() and not figures.is_dir():
        raise UntwineError(
            f"{figures} is a file; untwine writes the run's figures into a folder of that name: "
            "move the file away"
        )


def truncate_log(run_dir: Path, step: int) -> None:
    """Drop log lines past `step` (work after the last checkpoint is redone on resume)."""
    kept = [r for r in read_log(run_dir) if r.get("step", 0) <= step]
    atomic_write(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in kept).encode())
