"""RunConfig: data, model and train sections; YAML in and out; dotted overrides; validation."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from untwine.data import DATASETS
from untwine.errors import UntwineError
from untwine.metrics import enough_codes, parse_metrics
from untwine.models import MODELS
from untwine.registry import Registry, coerce

SECTIONS = ("data", "model", "train")


@dataclass(frozen=True)
class ComponentConfig:
    """A registered component by name, with its resolved options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass(frozen=True)
class TrainConfig:
    """How the trainer runs: budget, optimiser, seed, device, logging and checkpoint cadence."""

    steps: int = 20000
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: no evaluation during training
    eval_metrics: str = "mig"
    eval_samples: int = 10_000
    grad_clip: float = 0.0  # max global gradient norm per objective; 0: no clipping
    threads: int = 0  # CPU threads; 0: the process's count, recorded when training starts
    # bf16: the encoder's and decoder's matrix products in bfloat16 while training (2x faster on
    # CPUs with AVX512-BF16 or AMX, and on recent GPUs); weights and losses stay float32
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise UntwineError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.steps > STEPS_MAX:
            raise UntwineError(
                f"train.steps must be at most {STEPS_MAX:,} (the reference study trains "
                f"300,000), got {self.steps:,}"
            )
        if self.eval_every < 0:
            raise UntwineError(f"train.eval_every must be 0 (never) or more, got {self.eval_every}")
        if not 0 <= self.threads <= 4096:
            raise UntwineError(f"train.threads must be 0 (automatic) to 4096, got {self.threads}")
        if self.grad_clip < 0:
            raise UntwineError(f"train.grad_clip must be 0 (off) or positive, got {self.grad_clip}")
        check_seed(self.seed, "train.seed")
        if not self.lr > 0:
            raise UntwineError(f"train.lr must be positive, got {self.lr}")
        names = parse_metrics(self.eval_metrics)
        enough_codes(names, self.eval_samples, drop=self.eval_metrics == "all")


STEPS_MAX = 10**9  # days at 10,000 steps a second: a larger count is a typo
SEED_MAX = 2**63 - 1  # the largest seed torch's and numpy's generators both take


def check_seed(seed: int, where: str) -> None:
    """One rule for every seed: an integer from 0 to 2^63 - 1."""
    if not 0 <= seed <= SEED_MAX:
        raise UntwineError(f"{where} must be from 0 to {SEED_MAX}, got {seed}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; `to_dict()` is what `config.yaml` holds."""

    data: ComponentConfig
    model: ComponentConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "train": dataclasses.asdict(self.train),
        }


# Settings that may change between a run and its resume without changing what it trains.
RESUMABLE_CHANGES = (
    "train.steps",
    "train.device",
    "train.log_every",
    "train.checkpoint_every",
    "train.eval_every",
    "train.eval_metrics",
    "train.eval_samples",
    "train.threads",  # changes the numbers, not what is trained: a resume warns (see trainer)
    "train.precision",  # changes the numbers, not what is trained
)
# Model options that training reads off the dataset rather than a user setting them.
DATA_DERIVED_OPTIONS = ("observation_shape", "dataset_size")


def first_difference(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first setting of two configs (as `to_dict()` gives them) that changes what a run
    trains, as (`section.key`, old value, new value); None when they train the same thing.
    Resumable settings, and model options read off the data, are not compared."""
    for section in ("data", "model", "train"):
        for key in sorted(set(old[section]) | set(new[section])):
            name = f"{section}.{key}"
            if name in RESUMABLE_CHANGES or (section == "model" and key in DATA_DERIVED_OPTIONS):
                continue
            if old[section].get(key) != new[section].get(key):
                return name, old[section].get(key), new[section].get(key)
    return None


def resolve_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a nested dict (from YAML and overrides) and fill every default."""
    sections = _sections(raw)
    data = _component(DATASETS, _split_path(sections["data"]), default="dsprites")
    needed = [k for k in DATASETS.options(data.name) if k not in data.options]  # no default
    if needed:
        raise UntwineError(
            f"dataset {data.name!r} needs data.{needed[0]}"
            + (f", e.g. --dataset {data.name}:FILE" if needed[0] == "path" else "")
        )
    model = sections["model"]
    name = model.get("name", "betavae")
    accepted = MODELS.options(name) if isinstance(name, str) else {}
    suggested = DATASETS.get(data.name).suggested_model_options(data.options)
    model = {**{k: v for k, v in suggested.items() if k in accepted}, **model}
    model_config = _component(MODELS, model, default="betavae")
    # a model may train best with its own defaults (e.g. InfoGAN's G learning rate)
    train = {**getattr(MODELS.get(model_config.name), "train_defaults", {}), **sections["train"]}
    return RunConfig(data=data, model=model_config, train=_train(train))


def _split_path(section: dict[str, Any]) -> dict[str, Any]:
    """`name: table:FILE.csv` is short for `name: table, path: FILE.csv`; paths made absolute."""
    name = section.get("name")
    if isinstance(name, str) and ":" in name:
        name, path = name.split(":", 1)
        if section.get("path", path) != path:
            raise UntwineError(
                f"data.name {section['name']!r} and data.path {section['path']!r} disagree"
            )
        if "path" not in DATASETS.options(name):
            raise UntwineError(
                f"dataset {name!r} takes no path; NAME:PATH is for datasets with one"
            )
        section = {**section, "name": name, "path": path}
    if isinstance(section.get("path"), str):  # a run must find its data from any directory
        section["path"] = str(Path(section["path"]).expanduser().absolute())
    return section


def _sections(raw: Any) -> dict[str, dict[str, Any]]:
    """Each section of a config as a mapping of its own (empty if absent), or a one-line error."""
    if not isinstance(raw, dict):
        raise UntwineError("a config must be a mapping with sections data, model, train")
    unknown = sorted(set(map(str, raw)) - set(SECTIONS))
    if unknown:
        raise UntwineError(
            f"unknown config section {unknown[0]!r}; accepted: {', '.join(SECTIONS)}"
        )
    sections = {}
    for key in SECTIONS:
        value = raw.get(key) or {}
        if not isinstance(value, dict):
            raise UntwineError(f"config section {key!r} must be a mapping, got {value!r}")
        sections[key] = dict(value)
    return sections


def _component(registry: Registry, section: dict[str, Any], default: str) -> ComponentConfig:
    name = section.pop("name", default)
    if not isinstance(name, str):
        raise UntwineError(f"{registry.section}.name must be a string, got {name!r}")
    return ComponentConfig(name, registry.resolve(name, section))


def _train(section: dict[str, Any]) -> TrainConfig:
    hints = typing.get_type_hints(TrainConfig)
    unknown = sorted(set(section) - set(hints))
    if unknown:
        raise UntwineError(f"unknown option {unknown[0]!r} for train; accepted: {', '.join(hints)}")
    return TrainConfig(**{k: coerce(v, hints[k], f"train.{k}") for k, v in section.items()})


YAML_LIMIT = 100_000  # values a config may expand to through aliases; real ones hold hundreds


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, or a one-line error saying what is wrong with it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UntwineError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UntwineError(
            f"config file {path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    try:
        loader = yaml.SafeLoader(text)  # safe_load's steps, with a look at the node graph between
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > YAML_LIMIT:  # before expanding
                raise UntwineError(
                    f"config file {path} expands to over {YAML_LIMIT:,} values through YAML "
                    "aliases; write the values out"
                )
            value = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UntwineError(f"config file {path} is not valid YAML{where}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UntwineError(f"config file {path} must hold a mapping, got {type(value).__name__}")
    return value


def _expanded_size(node: yaml.Node, sizes: dict[int, float]) -> float:
    """How many values `node` stands for once every alias is copied out (inf for a cycle)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = float("inf")  # seen again before it is summed: the node contains itself
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    total = 1.0
    for child in children:
        total += _expanded_size(child, sizes)
        if total > YAML_LIMIT:
            break
    sizes[key] = total
    return total


def write_yaml(config: RunConfig) -> str:
    """The config as YAML text, sections in data flow order."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings (values parsed as YAML) to a nested dict copy."""
    result: dict[str, Any] = _sections(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise UntwineError(
                f"override {item!r} must look like section.key=value, e.g. model.beta=6"
            )
        if section not in SECTIONS:
            raise UntwineError(
                f"unknown config section {section!r} in {item!r}; accepted: {', '.join(SECTIONS)}"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        result.setdefault(section, {})[option] = value
    return result
