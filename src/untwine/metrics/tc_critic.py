"""Total correlation of any code, read by a critic trained on it (the density-ratio trick).

TC(z) = KL(q(z) || prod_d q(z_d)). A classifier that tells codes from column-permuted codes
(samples of prod_d q(z_d)) learns, at its optimum, logit(z) = log q(z) - log prod_d q(z_d), so
the mean logit over held-out codes estimates TC (Nguyen et al. 2010; Kim & Mnih 2018, eq. 4).
The Donsker-Varadhan bound E_q[T] - log E_prod[exp T] (Belghazi et al. 2018) on the same
held-out codes is a lower bound for any critic T, so it says how far the estimate can be trusted.
Unlike FactorVAE's discriminator, this critic is fresh, sees frozen codes and trains until its
held-out loss stops improving: a reference that no encoder has learnt to fool.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from untwine.errors import UntwineError
from untwine.metrics._checks import check_codes
from untwine.metrics.registry import Metric, prefixed, register

MIN_CODES = 200


def tc_critic(
    codes: np.ndarray,
    *,
    seed: int = 0,
    held_out: float = 0.2,
    hidden: int = 256,
    layers: int = 2,
    batch_size: int = 500,
    lr: float = 1e-3,
    max_epochs: int = 300,
    patience: int = 15,
) -> dict[str, float]:
    """TC of the codes' distribution in nats, estimated on held-out codes by a fresh critic.

    The rows are split (`held_out` of them kept aside); an MLP critic (`layers` hidden layers of
    `hidden` units) learns codes vs codes with each column shuffled on its own, fresh shuffles
    every epoch, until its held-out loss has not improved for `patience` epochs; the best epoch's
    critic is kept. Returns `tc` (the mean held-out logit; near 0, and possibly just below, for
    independent columns), `dv_bound` (the Donsker-Varadhan lower bound on held-out codes),
    `accuracy` (held-out, chance 0.5) and `epochs`. Constant columns carry no TC and are
    dropped; columns are standardised (TC does not change under per-column rescaling).
    Deterministic for a seed; the global torch RNG is left as it was.
    """
    codes = check_codes(codes)
    if len(codes) < MIN_CODES:
        raise UntwineError(f"tc_critic needs at least {MIN_CODES} codes, got {len(codes)}")
    if not 0 < held_out < 1:
        raise UntwineError(f"held_out must lie strictly between 0 and 1, got {held_out}")
    varying = codes.std(axis=0) > 0
    if varying.sum() < 2:  # one varying column (or none) is independent of the rest
        return {"tc": 0.0, "dv_bound": 0.0, "accuracy": 0.5, "epochs": 0}
    codes = codes[:, varying]
    codes = (codes - codes.mean(0)) / codes.std(0)
    rng = np.random.default_rng(seed)
    codes = codes[rng.permutation(len(codes))]
    n_test = max(round(held_out * len(codes)), 50)
    train = torch.as_tensor(codes[n_test:], dtype=torch.float32)
    test = torch.as_tensor(codes[:n_test], dtype=torch.float32)
    stopping_shuffled = _shuffle_columns(test, rng)
    test_shuffled = torch.cat([_shuffle_columns(test, rng) for _ in range(4)])  # for the bound

    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # callable under no_grad
        torch.manual_seed(seed)
        critic = _critic(codes.shape[1], hidden, layers)
        best, epochs = _fit(
            critic, train, test, stopping_shuffled, rng, batch_size, lr, max_epochs, patience
        )
    with torch.no_grad():
        joint, product = best(test).squeeze(1), best(test_shuffled).squeeze(1)
    log_mean_exp = torch.logsumexp(product, 0) - math.log(len(product))
    correct = (joint > 0).float().mean() + (product <= 0).float().mean()
    return {
        "tc": float(joint.mean()),
        "dv_bound": float(joint.mean() - log_mean_exp),
        "accuracy": float(correct / 2),
        "epochs": epochs,
    }


def _critic(dim: int, hidden: int, layers: int) -> nn.Sequential:
    """An MLP from a code to one logit: "drawn from q(z)" against "drawn from prod_d q(z_d)"."""
    sizes = [dim] + [hidden] * layers
    pairs = itertools.pairwise(sizes)
    body = [m for a, b in pairs for m in (nn.Linear(a, b), nn.LeakyReLU(0.2))]
    return nn.Sequential(*body, nn.Linear(sizes[-1], 1))


def _shuffle_columns(codes: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each column permuted on its own: draws of the product of the codes' marginals."""
    return torch.stack([col[rng.permutation(len(col))] for col in codes.T], 1)


def _classification_loss(critic: nn.Module, joint: torch.Tensor, product: torch.Tensor):
    """Balanced binary cross-entropy: label 1 for codes, 0 for shuffled codes."""
    logits = critic(torch.cat([joint, product])).squeeze(1)
    labels = torch.cat([torch.ones(len(joint)), torch.zeros(len(product))])
    return F.binary_cross_entropy_with_logits(logits, labels)


def _fit(critic, train, test, test_shuffled, rng, batch_size, lr, max_epochs, patience):
    """Adam on fresh shuffles each epoch; early stopping on the held-out loss.

    Returns the critic of the best held-out epoch and the number of epochs trained.
    """
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    best, best_loss, since_best = copy.deepcopy(critic), math.inf, 0
    epochs = 0
    while epochs < max_epochs and since_best < patience:
        epochs += 1
        shuffled = _shuffle_columns(train, rng)
        order = torch.as_tensor(rng.permutation(len(train)))
        for i in range(0, len(train), batch_size):
            rows = order[i : i + batch_size]
            loss = _classification_loss(critic, train[rows], shuffled[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            held_out_loss = _classification_loss(critic, test, test_shuffled).item()
        if held_out_loss < best_loss - 1e-4:
            best, best_loss, since_best = copy.deepcopy(critic), held_out_loss, 0
        else:
            since_best += 1
    return best, epochs


register(
    Metric(
        name="tc_critic",
        kind="latents",
        compute=lambda i: prefixed(
            "tc_critic", tc_critic(i.latent_samples(), seed=i.seed), main="tc"
        ),
        meanings={
            "tc_critic": "Total correlation of the latents in nats, read on held-out points by a "
            "critic trained to tell them from latents shuffled column by column (0: independent).",
            "tc_critic.dv_bound": "A lower bound on that total correlation (Donsker-Varadhan): "
            "the estimate is trustworthy when the two agree.",
        },
        better="lower",
        needs_factors=False,
        min_codes=MIN_CODES,
        measures="tc",
        references=("Kim & Mnih 2018", "Belghazi et al. 2018"),
    )
)
