"""Disentanglement metrics: plain functions over arrays, two dataset-sampling scores, and
Chen et al.'s MIG, which reads the posteriors rather than the codes.

`score(codes, factors, ...)` runs any set of the array metrics (the code metrics alone when
there are no factors) and returns one flat dict with the keys that `untwine evaluate` writes
to metrics.json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from untwine.errors import UntwineError
from untwine.metrics._checks import check_codes, histogram_discretize, train_test
from untwine.metrics.beta_vae import beta_vae_score
from untwine.metrics.dci import dci
from untwine.metrics.factor_vae import factor_vae_score
from untwine.metrics.irs import irs
from untwine.metrics.mcc import mcc
from untwine.metrics.mig import mig, mig_per_factor, normalized_mutual_info
from untwine.metrics.mig_chen import mig_chen, mig_chen_per_factor
from untwine.metrics.modularity import explicitness, modularity
from untwine.metrics.sap import sap
from untwine.metrics.tc_critic import MIN_CODES as TC_CRITIC_MIN_CODES
from untwine.metrics.tc_critic import tc_critic
from untwine.metrics.unsupervised import unsupervised

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # codes, factors, test codes, factors


def _prefixed(prefix: str, scores: dict[str, float], main: str | None = None) -> dict[str, float]:
    """Flatten a metric's dict under `prefix.`; its `main` entry is reported as `prefix` itself."""
    return {(prefix if key == main else f"{prefix}.{key}"): value for key, value in scores.items()}


def _mig_by_factor(split: Split, factor_names: Sequence[str]) -> dict[str, float]:
    """MIG, and each varying factor's term of it as `mig.<factor>` (which knobs were found)."""
    gaps = mig_per_factor(split[0], split[1])
    named = zip(factor_names, gaps, strict=True)
    by_factor = {f"mig.{name}": float(gap) for name, gap in named if not np.isnan(gap)}
    return {"mig": float(np.nanmean(gaps)), **by_factor}


# name -> function of (split, options) -> flat scores; options: seed, dci_estimator,
# factor_names. Metrics with no test phase read the train rows only, as the reference does.
ARRAY_METRICS: dict[str, Callable[[Split, dict], dict[str, float]]] = {
    "mig": lambda s, o: _mig_by_factor(s, o["factor_names"]),
    "dci": lambda s, o: _prefixed("dci", dci(*s, seed=o["seed"], estimator=o["dci_estimator"])),
    "sap": lambda s, o: {"sap": sap(*s)},
    "modularity": lambda s, o: {"modularity": modularity(s[0], s[1])},
    "explicitness": lambda s, o: _prefixed("explicitness", explicitness(*s), main="test"),
    "irs": lambda s, o: _prefixed("irs", irs(s[0], s[1]), main="irs"),
    "mcc": lambda s, o: {"mcc": mcc(s[0], s[1])},
}
# name -> function of (codes, options) -> flat scores: the metrics that need no factors.
CODE_METRICS: dict[str, Callable[[np.ndarray, dict], dict[str, float]]] = {
    "unsupervised": lambda c, o: _prefixed("unsupervised", unsupervised(c)),
    "tc_critic": lambda c, o: _prefixed("tc_critic", tc_critic(c, seed=o["seed"]), main="tc"),
}
MIN_CODES = {"tc_critic": TC_CRITIC_MIN_CODES}  # fewer rows: "all" leaves it out
SAMPLED_METRICS = ("beta_vae", "factor_vae")
POSTERIOR_METRICS = ("mig_chen",)  # need q(z|x), not only codes: the VAE family
ALL_METRICS = (*ARRAY_METRICS, *CODE_METRICS, *SAMPLED_METRICS, *POSTERIOR_METRICS)


def parse_metrics(names: str | Iterable[str], available: Iterable[str] = ALL_METRICS) -> list[str]:
    """`"all"` or a comma-separated list (or iterable) of metric names, checked."""
    available = list(available)
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
    """Every requested array metric on one split, as a flat dict (`mig`, `dci.completeness`...).

    Without a test split, the first ceil(0.9 N) rows train and the rest test; the code metrics
    read the train rows. Without factors, only the code metrics can run (`"all"` means those).
    `dci_estimator` is passed to `dci`. `factor_names` name MIG's per-factor terms
    (`mig.shape`...; default `mig.factor_0`...). `on_metric(name)` is called before each
    metric (for progress display).
    """
    if factors is None:
        names = _code_metrics_only(metrics)  # the names first: a mistyped one is the error
        codes = check_codes(codes)
        names = enough_codes(names, len(codes), metrics == "all")
        results: dict[str, float] = {}
        for name in names:
            if on_metric:
                on_metric(name)
            results.update(CODE_METRICS[name](codes, {"seed": seed}))
        return results
    names = parse_metrics(metrics, (*ARRAY_METRICS, *CODE_METRICS))
    split = train_test(codes, factors, codes_test, factors_test)
    num_factors = split[1].shape[1]
    if factor_names is None:
        factor_names = [f"factor_{j}" for j in range(num_factors)]
    if len(factor_names) != num_factors:
        raise UntwineError(
            f"{len(factor_names)} factor names for {num_factors} factors; give one name per column"
        )
    if len(set(factor_names)) != num_factors:
        raise UntwineError(f"factor names repeat ({', '.join(factor_names)}); give unique names")
    options = {"seed": seed, "dci_estimator": dci_estimator, "factor_names": list(factor_names)}
    results = {}
    for name in enough_codes(names, len(split[0]), metrics == "all"):
        if on_metric:
            on_metric(name)
        if name in CODE_METRICS:
            results.update(CODE_METRICS[name](split[0], options))
        else:
            results.update(ARRAY_METRICS[name](split, options))
    return results


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
    return keep_runnable(
        names,
        lambda n: rows >= MIN_CODES.get(n, 0),
        drop,
        lambda n: (
            f"metric {n!r} needs at least {MIN_CODES[n]} codes, got {rows}; "
            f"score at least {MIN_CODES[n]} points"
        ),
    )


def _code_metrics_only(metrics: str | Iterable[str]) -> list[str]:
    """The metrics to run on codes without factors: a factor metric named is a one-line error."""
    return keep_runnable(
        parse_metrics(metrics, (*ARRAY_METRICS, *CODE_METRICS)),
        lambda n: n in CODE_METRICS,
        metrics == "all",
        lambda n: (
            f"metric {n!r} needs ground-truth factors, and none were given; "
            f"without factors: {', '.join(CODE_METRICS)}"
        ),
    )


__all__ = [
    "ALL_METRICS",
    "ARRAY_METRICS",
    "CODE_METRICS",
    "POSTERIOR_METRICS",
    "SAMPLED_METRICS",
    "beta_vae_score",
    "dci",
    "enough_codes",
    "explicitness",
    "factor_vae_score",
    "histogram_discretize",
    "irs",
    "keep_runnable",
    "mcc",
    "mig",
    "mig_chen",
    "mig_chen_per_factor",
    "mig_per_factor",
    "modularity",
    "normalized_mutual_info",
    "parse_metrics",
    "sap",
    "score",
    "tc_critic",
    "unsupervised",
]
