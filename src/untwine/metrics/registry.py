"""The metric registry: each metric filed once, with what it reads, the keys it writes and what
they mean. Evaluation, the report, the curves, the sweep tables and the CLI all read it.

A metric is a `Metric` whose `compute(inputs)` returns a flat dict of scores. What it reads
is its `kind`:

- "codes": encoded codes, with their factors when it `needs_factors` (a train/test split);
- "latents": z as the model draws it, z ~ q(z|x) for the VAE family, on points of its own
  (the codes themselves when scoring arrays);
- "sampled": points it draws itself from a ground-truth dataset, through the encoder;
- "posterior": q(z|x) of points it draws itself (the VAE family only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from untwine.data import Dataset
from untwine.errors import UntwineError
from untwine.metrics._checks import check_codes, train_test
from untwine.metrics._sampling import RepresentationFn, sample_codes

Kind = Literal["codes", "latents", "sampled", "posterior"]
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # codes, factors, test codes, factors
PosteriorFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # images -> mu, logvar (n, d)
KINDS: dict[str, str] = {
    "codes": "reads the codes",
    "latents": "reads z as the model draws it, on points of its own",
    "sampled": "draws its own points through the encoder",
    "posterior": "reads q(z|x) of its own points (VAE family)",
}


@dataclass
class Inputs:
    """What a metric may read. `score` fills the codes (and factors); `evaluate` adds the
    dataset, the encoder and, for the VAE family, the posterior, for metrics that draw points."""

    codes: np.ndarray | None = None  # (n, d); the train rows when there are factors
    factors: np.ndarray | None = None  # (n, k) integer indices
    codes_test: np.ndarray | None = None
    factors_test: np.ndarray | None = None
    factor_names: Sequence[str] = ()
    seed: int = 0
    dci_estimator: str = "fast"
    dataset: Dataset | None = None
    encode: RepresentationFn | None = None
    posterior: PosteriorFn | None = None
    rng: np.random.Generator | None = None  # the draw the sampled scores share, in order
    samples: int = 0  # points a metric that draws its own reads
    batch_size: int = 256

    @property
    def split(self) -> Split:
        return self.codes, self.factors, self.codes_test, self.factors_test

    def latent_samples(self) -> np.ndarray:
        """z as the model draws it, on `samples` training points of a draw of its own (seeded
        by `seed`): z ~ q(z|x) for the VAE family, the codes for other models. Without a
        dataset, the codes given."""
        if self.dataset is None:
            return self.codes
        indices = self.dataset.sample_indices(
            self.samples, torch.Generator().manual_seed(self.seed)
        )
        noise = torch.Generator().manual_seed(self.seed)
        latents = []
        for i in range(0, self.samples, self.batch_size):
            images = self.dataset.observations(indices[i : i + self.batch_size])
            if self.posterior is None:
                latents.append(torch.from_numpy(self.encode(images)))
                continue
            mu, logvar = (torch.from_numpy(a) for a in self.posterior(images))
            eps = torch.randn(mu.shape, generator=noise, dtype=mu.dtype)
            latents.append(mu + eps * torch.exp(0.5 * logvar))
        return torch.cat(latents).double().numpy()


@dataclass(frozen=True)
class Metric:
    """One metric: how to compute it and how to show what it wrote."""

    name: str
    kind: Kind
    compute: Callable[[Inputs], dict[str, float]]
    meanings: Mapping[str, str]  # key written -> one line (the report's text)
    headline: tuple[str, ...] = ()  # keys charted and tabled; default: its undotted keys
    better: Literal["higher", "lower"] = "higher"  # which way its first key improves
    needs_factors: bool = True
    min_codes: int = 2  # fewer points: "all" leaves it out, naming it is an error
    per_factor: str | None = None  # meaning of each `<name>.<factor>` term, "{factor}" filled
    measures: str | None = None  # a loss term models log that this metric measures independently
    references: tuple[str, ...] = field(default=())  # papers, for `untwine metrics`
    # the code it rates worse than the perfect one, for the contract tests (None: noise for a
    # metric of factors, an invertible mix of them otherwise; "summed": factors added together)
    bad_code: Literal["noise", "entangled", "summed"] | None = None

    @property
    def main(self) -> str:
        """The key that sums the metric up: its first meaning."""
        return next(iter(self.meanings))

    def headline_keys(self) -> tuple[str, ...]:
        return self.headline or tuple(key for key in self.meanings if "." not in key)


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """File `metric` under its name; a name filed twice is a programming error."""
    if metric.name in METRICS:
        raise RuntimeError(f"metric {metric.name!r} is registered twice")
    if metric.kind not in KINDS:
        raise RuntimeError(f"metric {metric.name!r}: kind {metric.kind!r} is not one of {KINDS}")
    METRICS[metric.name] = metric
    return metric


def metric_names(kinds: Iterable[str] = tuple(KINDS)) -> list[str]:
    """Registered metric names of the given kinds, in the order they were registered."""
    return [name for name, metric in METRICS.items() if metric.kind in kinds]


def headline_keys() -> list[str]:
    """Every registered metric's headline keys: what curves draw and tables show."""
    return [key for metric in METRICS.values() for key in metric.headline_keys()]


def meanings(keys: Iterable[str] = ()) -> dict[str, str]:
    """key -> meaning for every registered key, plus any per-factor term among `keys`."""
    keys = list(keys)
    found: dict[str, str] = {}
    for metric in METRICS.values():
        found.update(metric.meanings)
        if metric.per_factor:
            prefix = f"{metric.name}."
            for key in keys:
                if key.startswith(prefix) and key not in metric.meanings:
                    found[key] = metric.per_factor.format(factor=key.removeprefix(prefix))
    return found


def references() -> dict[str, str]:
    """Loss term -> the metric that measures it independently (e.g. a model's TC estimate)."""
    return {m.measures: m.name for m in METRICS.values() if m.measures}


def parse_metrics(names: str | Iterable[str], available: Iterable[str] | None = None) -> list[str]:
    """`"all"` or a comma-separated list (or iterable) of metric names, checked."""
    available = list(METRICS if available is None else available)
    if isinstance(names, str):
        names = available if names.strip() == "all" else [n.strip() for n in names.split(",")]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise UntwineError(
            f"unknown metric {unknown[0]!r}; accepted: all, {', '.join(available)}"
            if unknown
            else f"no metric named; accepted: all, {', '.join(available)}"
        )
    return names


def keep_runnable(
    names: list[str], runnable: Callable[[str], bool], asked_all: bool, why: Callable[[str], str]
) -> list[str]:
    """`names` less those not `runnable` here: dropped when "all" was asked for, else the first
    is a one-line error, `why(name)`."""
    refused = [n for n in names if not runnable(n)]
    if refused and not asked_all:
        raise UntwineError(why(refused[0]))
    return [n for n in names if n not in refused]


def enough_codes(names: list[str], rows: int, drop: bool) -> list[str]:
    """`names` less those needing more than `rows` codes: dropped if `drop` (as "all" does),
    else a one-line error."""

    def why(name: str) -> str:
        need = METRICS[name].min_codes
        return (
            f"metric {name!r} needs at least {need} codes, got {rows}; score at least {need} points"
        )

    return keep_runnable(names, lambda n: rows >= METRICS[n].min_codes, drop, why)


def runnable(
    metrics: str | Iterable[str],
    *,
    factors: bool,
    posterior: bool = True,
    samples: int | None = None,
    model: str = "this model",
) -> list[str]:
    """The metrics to run: "all" keeps those the data's `factors`, a model with or without a
    `posterior` and the number of `samples` allow; a named metric that cannot run is a
    one-line error saying why."""
    asked_all = _asked_all(metrics)
    names = parse_metrics(metrics)
    if samples is not None:
        names = enough_codes(names, samples, asked_all)
    if not posterior:
        names = keep_runnable(
            names,
            lambda n: METRICS[n].kind != "posterior",
            asked_all,
            lambda n: (
                f"metric {n!r} reads the posterior q(z|x), which only the VAE family has; "
                f"{model} has none"
            ),
        )
    if factors:
        return names
    return _factor_free(
        names, asked_all, METRICS, "this dataset has none", " (give factors to score the rest)"
    )


def _asked_all(metrics: str | Iterable[str]) -> bool:
    """Whether `metrics` asks for every metric that can run (as `parse_metrics` reads "all")."""
    return isinstance(metrics, str) and metrics.strip() == "all"


def _factor_free(
    names: list[str], asked_all: bool, among: Iterable[str], missing: str, hint: str = ""
) -> list[str]:
    """`names` less those needing factors, where there are none: dropped for "all", else a
    one-line error listing the metrics of `among` that need none."""
    free = [n for n in among if not METRICS[n].needs_factors]
    return keep_runnable(
        names,
        lambda n: not METRICS[n].needs_factors,
        asked_all,
        lambda n: (
            f"metric {n!r} needs ground-truth factors, and {missing}; "
            f"without factors: {', '.join(free)}{hint}"
        ),
    )


def run_metrics(
    names: Iterable[str], inputs: Inputs, on_metric: Callable[[str], None] | None = None
) -> dict[str, float]:
    """Each named metric on `inputs`, in order, merged into one flat dict."""
    results: dict[str, float] = {}
    for name in names:
        if on_metric:
            on_metric(name)
        results.update(METRICS[name].compute(inputs))
    return results


def measure(
    metrics: str | Iterable[str],
    dataset: Dataset,
    encode: RepresentationFn,
    *,
    posterior: PosteriorFn | None = None,
    samples: int = 10_000,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    dci_estimator: str = "fast",
    batch_size: int = 256,
    on_metric: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """A representation's scores on a dataset, as `untwine evaluate` draws them.

    `encode` maps observations to codes (n, d); `posterior`, where the model has one, to the
    mean and log-variance of q(z|x). The metrics that read codes share one split, drawn first
    from `rng` (default: seeded by `seed`): `samples` train and `samples // 2` test points
    (without factors, `samples` codes). The sampled scores then draw from the same `rng`, in
    order, with the same budget; the others draw points of their own.
    """
    names = runnable(
        metrics,
        factors=bool(dataset.factor_names),
        posterior=posterior is not None,
        samples=samples,
        model="this encoder",
    )
    rng = np.random.default_rng(seed) if rng is None else rng
    inputs = Inputs(
        factor_names=dataset.factor_names,
        seed=seed,
        dci_estimator=dci_estimator,
        dataset=dataset,
        encode=_checked_codes(encode),
        posterior=None if posterior is None else _checked_posterior(posterior),
        rng=rng,
        samples=samples,
        batch_size=batch_size,
    )
    if any(METRICS[n].kind == "codes" for n in names):
        if dataset.factor_names:
            test = max(samples // 2, 2)
            inputs.codes, inputs.factors = sample_codes(dataset, inputs.encode, samples, rng)
            inputs.codes_test, inputs.factors_test = sample_codes(dataset, inputs.encode, test, rng)
        else:
            inputs.codes = inputs.encode(
                dataset.observations(rng.integers(0, len(dataset), samples))
            )
    return run_metrics(names, inputs, on_metric)


def _checked_codes(encode: RepresentationFn) -> RepresentationFn:
    """`encode`, refusing codes that are not a finite matrix with a row per observation."""

    def checked(observations: np.ndarray) -> np.ndarray:
        return _finite_rows(encode(observations), len(observations), "the encoder's codes")

    return checked


def _checked_posterior(posterior: PosteriorFn) -> PosteriorFn:
    """`posterior`, refusing means and log-variances that are not finite, matching matrices."""

    def checked(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = posterior(observations)
        mu = _finite_rows(mu, len(observations), "the posterior's means")
        logvar = _finite_rows(logvar, len(observations), "the posterior's log-variances")
        if mu.shape != logvar.shape:
            raise UntwineError(
                f"the posterior's means {mu.shape} and log-variances {logvar.shape} differ in shape"
            )
        return mu, logvar

    return checked


def _finite_rows(values: np.ndarray, rows: int, name: str) -> np.ndarray:
    """`values` as a finite float matrix with `rows` rows, or a one-line error."""
    values = np.asarray(values)
    if values.ndim != 2 or len(values) != rows or values.shape[1] < 1:
        raise UntwineError(
            f"{name} must be a matrix with a row per observation ({rows}), got {values.shape}"
        )
    if np.iscomplexobj(values):
        raise UntwineError(f"{name} must hold real numbers, got {values.dtype}")
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise UntwineError(f"{name} must hold finite numbers (a diverged model gives NaN)")
    return values


def score(
    codes: np.ndarray,
    factors: np.ndarray | None = None,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    *,
    metrics: str | Iterable[str] = "all",
    seed: int = 0,
    dci_estimator: str = "fast",
    factor_names: Sequence[str] | None = None,
    on_metric: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Every requested metric that reads codes, on one split, as a flat dict (`mig`,
    `dci.completeness`...).

    Without a test split, the first ceil(0.9 N) rows train and the rest test; the metrics that
    need no factors read the train rows. Without factors, only those run (`"all"` means them).
    `dci_estimator` is passed to `dci`. `factor_names` name the per-factor terms (`mig.shape`...;
    default `mig.factor_0`...). `on_metric(name)` is called before each metric (for progress).
    """
    code_metrics = metric_names(["codes", "latents"])
    names = parse_metrics(metrics, code_metrics)
    if factors is None:
        names = _factor_free(names, _asked_all(metrics), code_metrics, "none were given")
        inputs = Inputs(codes=check_codes(codes), seed=seed)
    else:
        inputs = Inputs(*train_test(codes, factors, codes_test, factors_test), seed=seed)
        inputs.factor_names = _factor_names(factor_names, inputs.factors.shape[1])
        inputs.dci_estimator = dci_estimator
    names = enough_codes(names, len(inputs.codes), _asked_all(metrics))
    return run_metrics(names, inputs, on_metric)


def _factor_names(names: Sequence[str] | None, num_factors: int) -> list[str]:
    """`names` checked against the factor columns; default `factor_0`..."""
    if names is None:
        return [f"factor_{j}" for j in range(num_factors)]
    if len(names) != num_factors:
        raise UntwineError(
            f"{len(names)} factor names for {num_factors} factors; give one name per column"
        )
    if len(set(names)) != num_factors:
        raise UntwineError(f"factor names repeat ({', '.join(names)}); give unique names")
    return list(names)


def prefixed(prefix: str, scores: Mapping[str, float], main: str | None = None) -> dict[str, float]:
    """Flatten a metric's dict under `prefix.`; its `main` entry is reported as `prefix` itself."""
    return {(prefix if key == main else f"{prefix}.{key}"): value for key, value in scores.items()}


def by_factor(name: str, gaps: np.ndarray, factor_names: Sequence[str]) -> dict[str, float]:
    """A per-factor metric: the mean over factors that vary as `name`, each as `name.<factor>`."""
    named = zip(factor_names, gaps, strict=True)
    terms = {f"{name}.{factor}": float(gap) for factor, gap in named if not np.isnan(gap)}
    return {name: float(np.nanmean(gaps)), **terms}
