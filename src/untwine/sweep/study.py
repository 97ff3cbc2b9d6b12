"""A study file: one YAML mapping that expands to runs (arms x swept values x seeds).

    name: betas               # optional; default: the file's name
    base:                     # a run config shared by every run (data, model, train)
      train: {steps: 5000}
    grid:                     # one mapping per arm; a list sweeps a key, a scalar fixes it
      - {model.name: betavae, model.beta: [1, 4, 16]}
      - {model.name: betatcvae, model.beta: 6}
    seeds: [0, 1, 2]          # default [0]
    images: 1000000           # optional: each run trains on this many images, whatever its
                              # batch size (train.steps = images // batch size; not both)
    evaluate:                 # default: `untwine evaluate`'s (all, 10000); false: no scores
      {metrics: "mig,dci", samples: 10000}

An option whose value is itself a list (`model.hidden`) is fixed in `base`, or swept as a list
of lists (`model.hidden: [[512, 256], [1200, 1200]]`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from untwine.config import SECTIONS, RunConfig, read_yaml, resolve_config
from untwine.data import Dataset, load_dataset
from untwine.errors import UntwineError
from untwine.evaluate import metrics_for
from untwine.metrics import METRICS, parse_metrics
from untwine.models import VAEBase
from untwine.train import build

STUDY_KEYS = ("name", "base", "grid", "seeds", "images", "evaluate")


@dataclass(frozen=True)
class StudyRun:
    """One run of a study: its name (its directory and its key in the results), what sets it
    apart from the others, and its resolved config."""

    name: str
    swept: dict[str, Any]
    config: RunConfig
    metrics: str | None = None  # what it is scored with: the study's, less what its model lacks

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.config.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def setting(self) -> str:
        """Its config less the seed, as text: the same for every seed of one setting."""
        config = self.config.to_dict()
        return json.dumps({**config, "train": {**config["train"], "seed": None}}, sort_keys=True)


@dataclass(frozen=True)
class Study:
    """The runs of a study file and how each is scored (`metrics` None: not scored)."""

    name: str
    runs: list[StudyRun]
    metrics: str | None
    samples: int

    def select(self, patterns: Sequence[str] | None) -> list[StudyRun]:
        """The runs whose names match any of the shell-style `patterns` (all runs for None)."""
        if not patterns:
            return list(self.runs)
        chosen: set[str] = set()
        for pattern in patterns:
            matches = {run.name for run in self.runs if fnmatch.fnmatchcase(run.name, pattern)}
            if not matches:
                names = ", ".join(run.name for run in self.runs[:6])
                more = ", ..." if len(self.runs) > 6 else ""
                raise UntwineError(
                    f"no run of study {self.name!r} matches {pattern!r}; its runs: {names}{more}"
                )
            chosen |= matches
        return [run for run in self.runs if run.name in chosen]


def load_study(path: str | Path) -> Study:
    """Read, validate and expand a study file; every run's config is checked before any trains."""
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(STUDY_KEYS))
    if unknown:
        raise UntwineError(
            f"study {path}: unknown key {unknown[0]!r}; accepted: {', '.join(STUDY_KEYS)}"
        )
    name = str(raw.get("name") or Path(path).stem)
    if not re.fullmatch(r"[\w+=-][\w.+= -]*", name):  # it names a folder under studies/
        raise UntwineError(
            f"study {path}: name {name!r} must be a plain folder name (letters, digits, spaces and "
            ". _ - + =, not starting with a dot)"
        )
    base = raw.get("base") or {}
    sections_ok = isinstance(base, dict) and all(isinstance(v, dict | None) for v in base.values())
    if not sections_ok or set(base) - set(SECTIONS):
        raise UntwineError(
            f"study {path}: base must be a run config with sections {', '.join(SECTIONS)}"
        )
    metrics, samples = _evaluation(raw.get("evaluate", {}), path)
    seeds = _seeds(raw.get("seeds", [0]), path)
    images = _images(raw.get("images"), path)
    points = [
        {**point, "train.seed": seed}
        for arm in _arms(raw.get("grid"), path)
        for point in _product(arm)
        for seed in seeds
    ]
    swept = _varying_keys(points)
    datasets: dict[str, Dataset] = {}
    runs = []
    for point in points:
        try:
            settings = _with_settings(base, point)
            config = resolve_config(settings)
            if images:
                config = _on_image_budget(config, settings, images)
            scored = _check_run(config, metrics, samples, datasets)
        except UntwineError as error:
            where = " ".join(f"{key}={value}" for key, value in point.items())
            raise UntwineError(f"study {path}, run {where}: {error}") from None
        run_name = _run_name(config.model.name, point, swept)
        setting = {key: point[key] for key in swept if key in point}
        runs.append(StudyRun(run_name, setting, config, scored))
    _refuse_repeats(runs, path)
    _refuse_unscored(metrics, runs, path)
    return Study(name, runs, metrics, samples)


def _check_run(
    config: RunConfig, metrics: str | None, samples: int, datasets: dict[str, Dataset]
) -> str | None:
    """Build the run's model on its data (each dataset loaded once), so that the model checks
    its options against the data, and check that the data has what the metrics need; return
    the metrics the run is scored with. A metric that reads q(z|x) is left out for a model
    without one (InfoGAN) when the study names it for the others."""
    key = json.dumps(config.data.to_dict(), sort_keys=True)
    if key not in datasets:
        datasets[key] = load_dataset(config.data.name, **config.data.options)
    _, model = build(config, datasets[key])
    if metrics and metrics != "all":  # "all" leaves out what cannot run by itself
        posterior = isinstance(model, VAEBase)
        names = [n for n in parse_metrics(metrics) if posterior or METRICS[n].kind != "posterior"]
        metrics = ",".join(names) or None
    if metrics:
        metrics_for(datasets[key], metrics, model, samples)
    return metrics


def _refuse_unscored(metrics: str | None, runs: list[StudyRun], path: str | Path) -> None:
    """A metric the study names must score at least one of its runs."""
    if not metrics or metrics == "all":
        return
    scored = {name for run in runs for name in (run.metrics or "").split(",")}
    for name in parse_metrics(metrics):
        if name not in scored:
            raise UntwineError(
                f"study {path}: metric {name!r} reads the posterior q(z|x), and no model of "
                "this study has one"
            )


def _evaluation(section: Any, path: str | Path) -> tuple[str | None, int]:
    """(metrics, samples) from the `evaluate` key: `untwine evaluate`'s defaults, or none."""
    if section is False:
        return None, 0
    if not isinstance(section, dict) or set(section) - {"metrics", "samples"}:
        raise UntwineError(
            f"study {path}: evaluate must be false or a mapping with metrics and samples"
        )
    metrics = str(section.get("metrics", "all"))
    parse_metrics(metrics)
    samples = section.get("samples", 10_000)
    if not isinstance(samples, int) or samples < 10:
        raise UntwineError(f"study {path}: evaluate.samples must be an integer ≥ 10, got {samples}")
    return metrics, samples


def _images(images: Any, path: str | Path) -> int | None:
    if images is None:
        return None
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        raise UntwineError(f"study {path}: images must be a positive integer, got {images!r}")
    return images


def _on_image_budget(config: RunConfig, settings: dict[str, Any], images: int) -> RunConfig:
    """The run trained for `images` images at its own batch size; a run that also sets
    train.steps is refused (the two would disagree)."""
    if "steps" in settings.get("train", {}):
        raise UntwineError("give the study's images or train.steps, not both")
    steps = max(images // config.train.batch_size, 1)
    return replace(config, train=replace(config.train, steps=steps))


def _arms(grid: Any, path: str | Path) -> list[dict[str, Any]]:
    """The grid as a list of arms, each a mapping of dotted keys (`model.beta`) to values."""
    arms = [{}] if grid is None else [grid] if isinstance(grid, dict) else grid
    if not isinstance(arms, list) or not arms or not all(isinstance(a, dict) for a in arms):
        raise UntwineError(f"study {path}: grid must be a mapping or a non-empty list of mappings")
    for arm in arms:
        for key in arm:
            section, _, option = str(key).partition(".")
            if section not in SECTIONS or not option:
                raise UntwineError(
                    f"study {path}: grid key {key!r} must look like section.option "
                    f"(sections: {', '.join(SECTIONS)}), e.g. model.beta"
                )
            if key == "train.seed":
                raise UntwineError(f"study {path}: give seeds with the study's seeds key")
            if arm[key] == []:
                raise UntwineError(f"study {path}: grid key {key} sweeps no values")
    return arms


def _product(arm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of an arm's swept (list) values, its fixed values in each."""
    values = [value if isinstance(value, list) else [value] for value in arm.values()]
    return [dict(zip(arm, combination, strict=True)) for combination in itertools.product(*values)]


def _seeds(seeds: Any, path: str | Path) -> list[int]:
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UntwineError(f"study {path}: seeds must be an integer or a list of integers")
    return seeds


def _varying_keys(points: list[dict[str, Any]]) -> list[str]:
    """The keys whose value differs between runs (or that only some runs set), in grid order."""
    keys = list(dict.fromkeys(key for point in points for key in point))
    return [
        key
        for key in keys
        if len({json.dumps(point.get(key), sort_keys=True) for point in points}) > 1
    ]


def _run_name(model: str, point: dict[str, Any], swept: list[str]) -> str:
    """`betavae-shapes3d-beta4-s0`: the model, then each swept value but the seed's (after its
    option's name, but a `data.name` alone), then the seed."""
    parts = [model]
    for key in swept:
        if key not in ("model.name", "train.seed") and key in point:
            option = key.rpartition(".")[2]
            parts.append(_label(point[key]) if option == "name" else option + _label(point[key]))
    return "-".join([*parts, f"s{point['train.seed']}"])


def _label(value: Any) -> str:
    """A value as a file-name-safe piece: [512, 256] -> 512x256."""
    text = "x".join(map(str, value)) if isinstance(value, list) else str(value)
    return re.sub(r"[^A-Za-z0-9._+=]", "_", text)


def _with_settings(base: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """The base config with a run's dotted settings applied."""
    raw = {key: dict(value or {}) for key, value in base.items()}
    for key, value in point.items():
        section, _, option = key.partition(".")
        raw.setdefault(section, {})[option] = value
    return raw


def _refuse_repeats(runs: list[StudyRun], path: str | Path) -> None:
    """Two runs may not train the same config (the same work twice) or share a directory."""
    configs: dict[str, str] = {}
    names: set[str] = set()
    for run in runs:
        if run.config_hash in configs:
            raise UntwineError(
                f"study {path}: runs {configs[run.config_hash]} and {run.name} train the same "
                "config; each point of the grid must differ"
            )
        if run.name in names:
            raise UntwineError(
                f"study {path}: two runs would share the directory {run.name}; "
                "sweep options whose last names differ"
            )
        configs[run.config_hash] = run.name
        names.add(run.name)
