"""The run directory: config.yaml, model.safetensors, state.pt, log.jsonl, figures/."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
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
    return resolve_config(read_yaml(path))


def save_weights(run_dir: Path, model: Model, step: int) -> None:
    """Weights as safetensors (never pickle), with the step in the metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(run_dir / WEIGHTS, save(tensors, metadata={"step": str(step)}))


def trained_steps(run_dir: str | Path) -> int:
    """The step of the run's saved weights (0 if none), read from the safetensors metadata."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        return 0
    with safe_open(path, framework="pt") as weights:
        return int((weights.metadata() or {}).get("step", 0))


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Trainer state (weights, optimiser, RNG, step) in one file, so a resume is consistent."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(run_dir / STATE, buffer.getvalue())


def load_state(run_dir: Path, device: torch.device) -> dict[str, Any] | None:
    """The trainer state, loaded with `weights_only=True`, or None if there is none yet."""
    path = run_dir / STATE
    return torch.load(path, map_location=device, weights_only=True) if path.is_file() else None


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
    if not (run_dir / WEIGHTS).is_file():
        raise UntwineError(f"{run_dir} has no {WEIGHTS} yet: training has not saved a checkpoint")
    model = create_model(config.model.name, **config.model.options)
    model.load_state_dict(load_file(run_dir / WEIGHTS))
    data = load_dataset(config.data.name, **config.data.options) if dataset else None
    return config, model.to(device).eval(), data


def append_log(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to log.jsonl."""
    with open(run_dir / LOG, "a") as file:
        file.write(json.dumps(record) + "\n")


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete line of log.jsonl; a line cut short by a kill is skipped."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_log(run_dir: Path, step: int) -> None:
    """Drop log lines past `step` (work after the last checkpoint is redone on resume)."""
    kept = [r for r in read_log(run_dir) if r.get("step", 0) <= step]
    atomic_write(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in kept).encode())
