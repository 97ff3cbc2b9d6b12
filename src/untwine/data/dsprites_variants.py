"""dSprites variants: a random colour, a noisy background, and two correlated factors.

Colour and noise are nuisances, not factors, as in the reference study's colour and noisy
dSprites. `observations(indices)` stays a pure function of the index (the nuisance is drawn from a
hash of it, so training is reproducible and resumable); `observations_from_factors(..., rng)`
draws it afresh from `rng`, as the reference does when scoring.
"""

from __future__ import annotations

import numpy as np
import torch

from untwine.data.base import DATASETS
from untwine.data.dsprites import FACTOR_NAMES, FACTOR_SIZES, IMAGE_SIZE, DSprites
from untwine.errors import UntwineError

PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3


def hashed_uint8(keys: np.ndarray, salt: int) -> np.ndarray:
    """Uniform uint8 values that depend only on (key, salt): splitmix64 of each key."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(56)).astype(np.uint8)


class _NuisanceDSprites(DSprites):
    """dSprites in RGB with `draws` random bytes of nuisance per image, applied by `_apply`."""

    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    finite = False  # a scored image's nuisance is drawn afresh: no code table stands in
    draws: int
    salt: int

    def observations(self, indices: np.ndarray) -> np.ndarray:
        keys = np.asarray(indices, dtype=np.uint64)[:, None] * np.uint64(self.draws)
        keys = keys + np.arange(self.draws, dtype=np.uint64)
        return self._apply(super().observations(indices), hashed_uint8(keys, self.salt))

    def observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        if rng is None:
            return super().observations_from_factors(factors)
        sprites = DSprites.observations(self, self.factors_to_index(factors))
        return self._apply(sprites, rng.integers(0, 256, (len(factors), self.draws), np.uint8))

    @staticmethod
    def _apply(sprites: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """RGB images from binary sprites (n, H, W, 1) and uint8 draws (n, `draws`)."""
        raise NotImplementedError


@DATASETS.register("dsprites-color")
class ColorDSprites(_NuisanceDSprites):
    """dSprites in RGB, each sprite in a random colour, every channel uniform in [0.5, 1]."""

    draws, salt = 3, 1

    @staticmethod
    def _apply(sprites: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """Binary sprites (n, H, W, 1) times a colour (n, 3) mapped from 0..255 onto 0.5..1."""
        colour = (128 + draws.astype(np.uint16) // 2).astype(np.uint8)  # 128..255
        return np.where(sprites > 0, colour[:, None, None, :], np.uint8(0))


@DATASETS.register("dsprites-noisy")
class NoisyDSprites(_NuisanceDSprites):
    """dSprites in RGB, the white sprite over uniform noise in every pixel and channel."""

    draws, salt = PIXELS, 2

    @staticmethod
    def _apply(sprites: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """White sprites (n, H, W, 1) over noise (n, H * W * 3): min(sprite + noise, 1)."""
        noise = draws.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 3)
        return np.where(sprites > 0, np.uint8(255), noise)


@DATASETS.register("dsprites-correlated")
class CorrelatedDSprites(DSprites):
    """dSprites whose training draws tie two factors together (Träuble et al. 2021).

    A pair (a, b) is drawn with probability proportional to exp(-(a' - b')^2 / (2 sigma^2)),
    a' and b' being the factor values scaled to [0, 1]; the other factors stay uniform. Small
    `sigma` ties them tightly (0.1 gives a correlation of 0.94, 0.2 of 0.78); `correlation`
    reports it. Scoring (`sample_factors`) still draws the full grid uniformly, so metrics
    tell whether a model separated factors it only saw together.
    """

    def __init__(
        self, factors: tuple[str, ...] = ("position_x", "position_y"), sigma: float = 0.2
    ) -> None:
        super().__init__()
        unknown = [f for f in factors if f not in FACTOR_NAMES]
        if len(factors) != 2 or unknown or factors[0] == factors[1]:
            raise UntwineError(
                f"data.factors must name two different factors of {', '.join(FACTOR_NAMES)}, "
                f"got {list(factors)}"
            )
        if not sigma > 0:
            raise UntwineError(f"data.sigma must be positive, got {sigma}")
        self.pair = tuple(FACTOR_NAMES.index(f) for f in factors)
        sizes = [FACTOR_SIZES[k] for k in self.pair]
        a = np.linspace(0, 1, sizes[0])[:, None]
        b = np.linspace(0, 1, sizes[1])[None, :]
        weights = np.exp(-((a - b) ** 2) / (2 * sigma**2))
        self.pair_probability = weights / weights.sum()  # (size_a, size_b)

    @property
    def correlation(self) -> float:
        """Pearson correlation of the tied pair under the training distribution."""
        p = self.pair_probability
        a = np.arange(p.shape[0])[:, None]
        b = np.arange(p.shape[1])[None, :]
        mean_a, mean_b = (p * a).sum(), (p * b).sum()
        cov = (p * (a - mean_a) * (b - mean_b)).sum()
        var_a, var_b = (p * (a - mean_a) ** 2).sum(), (p * (b - mean_b) ** 2).sum()
        return float(cov / np.sqrt(var_a * var_b))

    def sample_indices(self, n: int, generator: torch.Generator) -> np.ndarray:
        factors = torch.stack(
            [torch.randint(size, (n,), generator=generator) for size in FACTOR_SIZES], dim=1
        ).numpy()
        flat = torch.from_numpy(self.pair_probability.ravel())
        pairs = torch.multinomial(flat, n, replacement=True, generator=generator).numpy()
        factors[:, self.pair[0]], factors[:, self.pair[1]] = np.unravel_index(
            pairs, self.pair_probability.shape
        )
        return self.factors_to_index(factors)
