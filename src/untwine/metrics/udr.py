"""UDR (Duan et al. 2020): choose among runs without labels, by how much they agree.

Runs of one setting that differ by seed, if they disentangle, find the same factors, each on a
latent of its own: their informative latents match one to one, up to order and sign. UDR
scores every ordered pair of runs by how one-to-one the correlations between their latents
are, and each run by the median of its scores against the others. No factors are read.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Lasso

from untwine.errors import UntwineError
from untwine.metrics._checks import standardised

IDLE_NATS = 0.01  # a latent carrying less (a VAE's average KL, as the reference) is left out
LASSO_ALPHA = 0.1


def latent_similarity(
    a: np.ndarray,
    b: np.ndarray,
    method: Literal["spearman", "lasso"] = "spearman",
    noise_floor: float | None = None,
) -> np.ndarray:
    """|R(i, j)| between latent i of `a` (n, d_a) and latent j of `b` (n, d_b), (d_a, d_b).

    `spearman`: absolute rank correlation, where values under `noise_floor` (default 4/sqrt(n),
    four standard deviations of the rank correlation of independent latents) count as 0.
    `lasso`: absolute coefficients of a Lasso (alpha 0.1) regressing `b` on `a`, both
    standardised, as disentanglement_lib computes it (sparse by itself; an exact copy reads
    0.9). A constant latent correlates 0 with everything.
    """
    if method == "lasso":
        return np.abs(Lasso(alpha=LASSO_ALPHA).fit(standardised(a), standardised(b)).coef_.T)
    ranks_a, ranks_b = standardised(rankdata(a, axis=0)), standardised(rankdata(b, axis=0))
    rho = np.abs(ranks_a.T @ ranks_b) / len(a)
    floor = 4 / np.sqrt(len(a)) if noise_floor is None else noise_floor
    return np.where(rho < floor, 0.0, rho)


def pair_score(similarity: np.ndarray) -> float:
    """How one-to-one a similarity matrix (d_a, d_b) of informative latents is, in [0, 1].

    As Duan et al. define it: sum over rows of max^2 / sum, plus the same over columns,
    divided by d_a + d_b; a row or column of zeros adds 0. disentanglement_lib averages the
    row and column means instead, which differs when d_a != d_b.
    """
    d_a, d_b = similarity.shape
    if d_a + d_b == 0:
        return 0.0
    if similarity.size == 0:
        return 0.0
    total = 0.0
    for axis in (1, 0):
        top, sums = similarity.max(axis), similarity.sum(axis)
        total += np.where(sums > 0, np.square(top) / np.where(sums > 0, sums, 1.0), 0.0).sum()
    return float(total / (d_a + d_b))


def udr(
    representations: list[np.ndarray],
    information: list[np.ndarray | None] | None = None,
    *,
    method: Literal["spearman", "lasso"] = "spearman",
    noise_floor: float | None = None,
) -> dict[str, np.ndarray]:
    """UDR of each run from its representation of the same n inputs, (n, d) each.

    `information` (d,) per run, what each latent carries in nats (a VAE's average KL, a
    quantised code's entropy): latents under 0.01 nats are left out of its comparisons (None:
    every latent that varies counts). Returns `pairs` (runs, runs),
    the pair score of run i's latents against run j's (Lasso: j's regressed on i's; the
    diagonal is 1), and `scores` (runs,), run j's median over the other runs i of pairs[i, j],
    as disentanglement_lib aggregates.

    The reference counts every rank correlation, so that the noise between unrelated latents
    lowers even identical runs (five latents at n = 1,000: 0.89); `noise_floor=0` restores it.
    """
    count = len(representations)
    if count < 2:
        raise UntwineError(f"UDR compares runs: it needs at least 2, got {count}")
    rows = {len(r) for r in representations}
    if len(rows) != 1:
        raise UntwineError(f"UDR needs every run's codes of the same inputs, got {sorted(rows)}")
    information = information or [None] * count
    informative = [
        r.std(axis=0) > 0 if nats is None else np.asarray(nats) > IDLE_NATS
        for r, nats in zip(representations, information, strict=True)
    ]
    pairs = np.eye(count)
    for i in range(count):
        for j in range(count):
            if i != j:
                a = representations[i][:, informative[i]]
                b = representations[j][:, informative[j]]
                if a.shape[1] and b.shape[1]:
                    pairs[i, j] = pair_score(latent_similarity(a, b, method, noise_floor))
                else:
                    pairs[i, j] = 0.0
    others = ~np.eye(count, dtype=bool)
    scores = np.array([np.median(pairs[:, j][others[:, j]]) for j in range(count)])
    return {"scores": scores, "pairs": pairs}
