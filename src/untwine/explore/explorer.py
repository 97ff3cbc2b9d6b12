"""What the explorer serves, without the web: runs opened once, each latent named and ordered,
observations by index or by factor values, and batched encode/decode.

Everything a request may ask is checked here (lengths, finiteness, ranges) and refused with an
UntwineError; the web layer turns those into 4xx answers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine import runs
from untwine.data import Dataset, to_tensor
from untwine.errors import UntwineError
from untwine.metrics import headline_keys
from untwine.models import Autoencoder, Model, QuantizedAE
from untwine.viz.knobs import Knob, factor_latent_matrix, knob_names
from untwine.viz.traversal import latent_information

COLLAPSED = 0.01  # nats (KL or entropy) below which a latent carries nothing: folded away
LIMIT = 10.0  # a latent value beyond this is clamped (sliders span ±3)
MOST_CODES = 256  # codes one decode request may ask for
NOISE_MAX = 2**31 - 1  # the largest noise seed a request may give


@dataclass
class Latent:
    """One knob: which latent, what it carries (`information` nats of `measure`: a VAE's KL, a
    quantised code's entropy H; None for a generator's codes), the factor it turns (or None)
    and how cleanly; a slider from `low` to `high` (snapping to `values` when the latent takes
    only those), or for a categorical code a choice of `choices` values."""

    index: int
    information: float | None
    factor: str | None
    share: float
    measure: str | None = None
    low: float = -3.0
    high: float = 3.0
    choices: int = 0
    values: list[float] | None = None

    @property
    def collapsed(self) -> bool:
        return self.information is not None and self.information < COLLAPSED


@dataclass
class RunView:
    """One run as the explorer shows it: its model, its latents by KL, its headline scores."""

    name: str
    path: Path
    model: Model
    latents: list[Latent]
    scores: dict[str, float]

    @property
    def generator(self) -> bool:
        """A generator with codes (InfoGAN): its decode also takes a noise sample."""
        return not isinstance(self.model, Autoencoder)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": type(self.model).__name__,
            "generator": self.generator,
            "latent_dim": self.model.latent_dim,
            "latents": [{**vars(latent), "collapsed": latent.collapsed} for latent in self.latents],
            "scores": self.scores,
        }


class Explorer:
    """Runs on one dataset, opened once: the knobs of each and the observations to start from."""

    def __init__(self, run_dirs: list[str | Path], device: str = "cpu") -> None:
        if not run_dirs:
            raise UntwineError("give at least one run directory to explore")
        self.device = torch.device(device)
        self.runs: list[RunView] = []
        self.dataset: Dataset | None = None
        for run_dir in run_dirs:
            config, model, dataset = runs.open_run(run_dir, self.device)
            if not isinstance(model, Autoencoder) and not hasattr(model, "generate"):
                raise UntwineError(f"{run_dir}: {config.model.name} has no latents to turn")
            if self.dataset is None:
                self.dataset, self._data_config = dataset, config.data
            elif config.data != self._data_config:
                raise UntwineError(
                    f"{run_dir} trained on {config.data.name} {config.data.options}, the first "
                    f"run on {self._data_config.name} {self._data_config.options}; runs shown "
                    "side by side must share their data"
                )
            self.runs.append(_view(Path(run_dir), model, self.dataset))
        names = [run.name for run in self.runs]
        for i, name in enumerate(names):  # two runs called `demo` in different folders
            if names.count(name) > 1:
                self.runs[i].name = str(self.runs[i].path)

    @property
    def images(self) -> bool:
        return len(self.dataset.observation_shape) == 3

    def describe(self) -> dict[str, Any]:
        """The dataset and every run, as the page needs them to lay itself out."""
        data = self.dataset
        return {
            "dataset": {
                "name": self._data_config.name,
                "size": len(data),
                "observation_shape": list(data.observation_shape),
                "kind": "image" if self.images else "table",
                "factor_names": list(data.factor_names),
                "factor_sizes": [int(s) for s in data.factor_sizes],
                "feature_names": list(data.feature_names or ()),
                "by_factors": hasattr(data, "factors_to_index"),
            },
            "runs": [run.describe() for run in self.runs],
        }

    def index_of(self, factors: list[int]) -> int:
        """The observation with these factor values (a grid dataset's)."""
        data = self.dataset
        if not hasattr(data, "factors_to_index"):
            raise UntwineError(f"{self._data_config.name} has no factor grid to pick from")
        if len(factors) != len(data.factor_sizes):
            raise UntwineError(
                f"give {len(data.factor_sizes)} factor values ({', '.join(data.factor_names)}), "
                f"got {len(factors)}"
            )
        for name, value, size in zip(data.factor_names, factors, data.factor_sizes, strict=True):
            if not 0 <= value < size:
                raise UntwineError(f"factor {name} takes 0 to {size - 1}, got {value}")
        return int(data.factors_to_index(np.array([factors]))[0])

    def observation(self, index: int) -> np.ndarray:
        """Observation `index` as the dataset holds it: uint8 (H, W, C) or a float row (F,)."""
        if not 0 <= index < len(self.dataset):
            raise UntwineError(f"index must be 0 to {len(self.dataset) - 1}, got {index}")
        return self.dataset.observations(np.array([index]))[0]

    def factors(self, index: int) -> list[int]:
        if not self.dataset.factor_names:
            return []
        return [int(v) for v in self.dataset.index_to_factors(np.array([index]))[0]]

    @torch.no_grad()
    def encode(self, observation: np.ndarray) -> list[list[float]]:
        """Each run's code of one observation (as `observation` returns them): a VAE's
        posterior mean, a quantised code, an InfoGAN's codes as Q reads them."""
        x = to_tensor(observation[None], self.device)
        return [run.model.representation(x)[0].tolist() for run in self.runs]

    @torch.no_grad()
    def decode(self, run: int, codes: list[list[float]], noise: int = 0) -> np.ndarray:
        """Run `run`'s output for each code: uint8 images (n, H, W, C), or rows (n, F) as the
        model sees them (`in_units` converts them). A generator draws its noise from seed
        `noise`, the same for every code of the batch."""
        view = self.run(run)
        z = torch.tensor(self.codes(codes, view), dtype=torch.float32, device=self.device)
        if view.generator:
            model = view.model
            seeded = torch.Generator(device=self.device).manual_seed(check_noise(noise))
            sample = torch.randn(1, model.noise_dim, generator=seeded, device=self.device)
            cont, cat = z[:, : model.continuous], z[:, model.continuous :].long()
            out = model.generate(sample.expand(len(z), -1), cat, cont)
        else:
            out = view.model.mean_image(z)
        if self.images:
            return out.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return out.cpu().numpy()

    def in_units(self, rows: np.ndarray) -> np.ndarray:
        """Table rows as the model sees them (standardised), back in the table's own units."""
        if hasattr(self.dataset, "feature_mean"):
            return rows * self.dataset.feature_std + self.dataset.feature_mean
        return rows

    def run(self, index: int) -> RunView:
        if not 0 <= index < len(self.runs):
            raise UntwineError(f"run must be 0 to {len(self.runs) - 1}, got {index}")
        return self.runs[index]

    @staticmethod
    def codes(codes: Any, view: RunView) -> np.ndarray:
        """Codes as a (n, latent_dim) array, continuous values clamped to ±LIMIT, categorical
        ones checked against their choices; or a one-line error. A quantised latent's value
        is decoded as given: its decoder reads any number, as a traversal between values."""
        size = view.model.latent_dim
        if not isinstance(codes, list) or not 1 <= len(codes) <= MOST_CODES:
            raise UntwineError(f"give 1 to {MOST_CODES} codes, each a list of numbers")
        for code in codes:
            if not isinstance(code, list) or len(code) != size:
                raise UntwineError(f"each code must hold {size} numbers, one per latent")
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in code):
                raise UntwineError("codes must hold finite numbers")
        values = np.clip(np.array(codes, dtype=np.float64), -LIMIT, LIMIT)
        for latent in (latent for latent in view.latents if latent.choices):
            column = values[:, latent.index]
            if not np.all((column == np.round(column)) & (column >= 0) & (column < latent.choices)):
                raise UntwineError(f"code {latent.index} is categorical: 0 to {latent.choices - 1}")
        return values


def check_noise(seed: int) -> int:
    """A generator's noise seed, or a one-line error."""
    if not 0 <= seed <= NOISE_MAX:
        raise UntwineError(f"noise must be a seed from 0 to {NOISE_MAX}, got {seed}")
    return seed


def _view(path: Path, model: Model, dataset: Dataset) -> RunView:
    """Name a run's latents (its report's knobs.json, else measured now); an autoencoder's most
    informative first (a quantised one's on sliders that snap to its values), a generator's
    continuous codes then its categorical ones."""
    knobs = _knobs(path, model, dataset)

    def named(i: int, **rest: Any) -> Latent:
        return Latent(
            i,
            factor=knobs[i].factor if knobs else None,
            share=knobs[i].score if knobs else 0.0,
            **rest,
        )

    if isinstance(model, Autoencoder):
        info, measure = latent_information(model, dataset)
        snaps = (
            model.latent_values().detach().cpu().tolist()
            if isinstance(model, QuantizedAE)
            else [None] * model.latent_dim
        )
        latents = [
            named(i, information=float(info[i]), measure=measure, **_slider(snaps[i]))
            for i in map(int, np.argsort(-info, kind="stable"))
        ]
    else:
        limit = 1.0 if model.code_prior == "uniform" else 2.0
        latents = [
            named(i, information=None, low=-limit, high=limit) for i in range(model.continuous)
        ]
        latents += [
            named(model.continuous + j, information=None, low=0, high=k - 1, choices=k)
            for j, k in enumerate(model.categorical)
        ]
    return RunView(path.name, path, model, latents, _scores(path))


def _slider(values: list[float] | None) -> dict[str, Any]:
    """A latent's slider: the default span, or the span of the values it snaps to."""
    return {} if values is None else {"values": values, "low": values[0], "high": values[-1]}


def _knobs(path: Path, model: Model, dataset: Dataset) -> list[Knob] | None:
    if not dataset.factor_names:
        return None
    written = path / runs.FIGURES / "knobs.json"
    if written.is_file():
        try:
            knobs = [Knob(**k) for k in json.loads(written.read_text())]
            if len(knobs) == model.latent_dim:
                return knobs
        except (ValueError, TypeError):
            pass  # damaged or from another version: measured again below
    matrix = factor_latent_matrix(model, dataset, n=3000, seed=0)
    return knob_names(matrix, dataset.factor_names)


def _scores(path: Path) -> dict[str, float]:
    """The run's headline scores from metrics.json (none before `untwine evaluate`)."""
    scores = runs.read_metrics(path) or {}
    return {k: float(scores[k]) for k in headline_keys() if isinstance(scores.get(k), (int, float))}
