"""Metric speed: each array metric on 10,000 train + 5,000 test points of a 10-d code.

Prints one JSON object: seconds per metric (DCI with both estimators), the suite's total
against the 10 s target, the fast DCI estimator's scores minus the reference's, and each time
as a ratio to a calibration workload timed in the same run (a fixed matrix product loop), so
figures from noisy machines can be compared.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from untwine import metrics

DSPRITES_SIZES = (3, 6, 40, 32, 32)


def calibration_seconds() -> float:
    """A fixed CPU workload: 20 products of 512 x 512 matrices."""
    a = np.random.default_rng(0).normal(size=(512, 512))
    start = time.perf_counter()
    for _ in range(20):
        a = np.tanh(a @ a / 512)
    return time.perf_counter() - start


def representation(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """dSprites-like factors and a 10-d code: 5 noisy factor codes and 5 noise dimensions."""
    factors = np.stack([rng.integers(0, s, n) for s in DSPRITES_SIZES], axis=1)
    signal = factors / (np.array(DSPRITES_SIZES) - 1) + rng.normal(0, 0.05, factors.shape)
    return np.column_stack([signal, rng.normal(size=(n, 5))]), factors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--test", type=int, default=5_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    codes, factors = representation(args.train, rng)
    codes_test, factors_test = representation(args.test, rng)
    calibration = calibration_seconds()
    seconds, scores = {}, {}
    for name in metrics.ARRAY_METRICS:
        start = time.perf_counter()
        scores.update(metrics.score(codes, factors, codes_test, factors_test, metrics=name))
        seconds[name] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    fast = metrics.dci(codes, factors, codes_test, factors_test, estimator="lightgbm")
    seconds["dci_lightgbm"] = round(time.perf_counter() - start, 3)
    total = sum(v for k, v in seconds.items() if k != "dci_lightgbm")
    total_fast = total - seconds["dci"] + seconds["dci_lightgbm"]
    print(
        json.dumps(
            {
                "benchmark": "metrics",
                "train_points": args.train,
                "test_points": args.test,
                "code_dim": codes.shape[1],
                "factor_sizes": DSPRITES_SIZES,
                "calibration_s": round(calibration, 3),
                "seconds": seconds,
                "ratio_to_calibration": {k: round(v / calibration, 2) for k, v in seconds.items()},
                "total_s": round(total, 2),
                "total_s_with_lightgbm_dci": round(total_fast, 2),
                "target_total_s": 10.0,
                "dci_speedup_lightgbm": round(seconds["dci"] / seconds["dci_lightgbm"], 1),
                "dci_lightgbm_minus_reference": {
                    k: round(v - scores[f"dci.{k}"], 4) for k, v in fast.items()
                },
                "scores": {k: round(v, 4) for k, v in scores.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
