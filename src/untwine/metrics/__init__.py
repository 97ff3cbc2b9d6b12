"""Disentanglement metrics: plain functions over arrays, two dataset-sampling scores, Chen et
al.'s MIG (which reads the posteriors) and a critic's total correlation, each filed once in
the registry (`METRICS`) with what it reads, the keys it writes and what they mean.

`score(codes, factors, ...)` runs any set of the metrics that read codes (those that need no
factors when there are none) and returns one flat dict with the keys that `untwine evaluate`
writes to metrics.json. `udr(...)` scores runs against one another rather than one model
against factors, so it is not filed with them.
"""

# isort: off
# Importing a metric's module registers it; this order is the order metrics are listed and run.
from untwine.metrics.mig import mig, mig_per_factor, normalized_mutual_info
from untwine.metrics.dci import dci
from untwine.metrics.sap import sap
from untwine.metrics.modularity import explicitness, modularity
from untwine.metrics.irs import irs
from untwine.metrics.mcc import mcc
from untwine.metrics.infomec import infomec
from untwine.metrics.unsupervised import unsupervised
from untwine.metrics.tc_critic import tc_critic
from untwine.metrics.beta_vae import beta_vae_score
from untwine.metrics.factor_vae import factor_vae_score
from untwine.metrics.fairness import fairness
from untwine.metrics.mig_chen import mig_chen, mig_chen_per_factor

# isort: on
from untwine.metrics._checks import discrete_entropy, histogram_discretize
from untwine.metrics.registry import (
    KINDS,
    METRICS,
    Inputs,
    Metric,
    enough_codes,
    headline_keys,
    keep_runnable,
    meanings,
    measure,
    metric_names,
    parse_metrics,
    references,
    register,
    run_metrics,
    runnable,
    score,
)
from untwine.metrics.udr import udr

__all__ = [
    "KINDS",
    "METRICS",
    "Inputs",
    "Metric",
    "beta_vae_score",
    "dci",
    "discrete_entropy",
    "enough_codes",
    "explicitness",
    "factor_vae_score",
    "fairness",
    "headline_keys",
    "histogram_discretize",
    "infomec",
    "irs",
    "keep_runnable",
    "mcc",
    "meanings",
    "measure",
    "metric_names",
    "mig",
    "mig_chen",
    "mig_chen_per_factor",
    "mig_per_factor",
    "modularity",
    "normalized_mutual_info",
    "parse_metrics",
    "references",
    "register",
    "run_metrics",
    "runnable",
    "sap",
    "score",
    "tc_critic",
    "udr",
    "unsupervised",
]
