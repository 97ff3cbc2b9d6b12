"""Metric speed: each array and code metric on 10,000 train + 5,000 test points of a 10-d code.

Prints one JSON object: seconds per metric (the fastest of `--repeat` runs; DCI with its fast
default estimator), the suite's total against the 10 s target (the critic's TC, which trains
a network, has a target of its own: 30 s on 10,000 codes), DCI with sklearn's own
estimator (`--reference`, minutes) and the two estimators' difference, and each time as a
ratio to a calibration workload timed in the same run (a fixed matrix product loop), so
figures from noisy machines can be compared. The fast estimator is compiled once per machine
(cached); its first-ever call is timed apart.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from untwine import metrics

DSPRITES_SIZES = (3, 6, 40, 32, 32)
OWN_TARGETS_S = {"tc_critic": 30.0}  # metrics timed against a target of their own


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


def timed(fn, *args, **kwargs) -> tuple[float, dict]:
    """Seconds taken and result of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--test", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per metric; the fastest counts")
    parser.add_argument(
        "--reference", action="store_true", help="also time sklearn's DCI and compare"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    codes, factors = representation(args.train, rng)
    codes_test, factors_test = representation(args.test, rng)
    split = (codes, factors, codes_test, factors_test)
    warmup, _ = timed(metrics.dci, codes[:200], factors[:200] % 2)
    calibration = calibration_seconds()
    seconds, scores = {}, {}
    for name in metrics.metric_names(["codes", "latents"]):
        runs = [timed(metrics.score, *split, metrics=name) for _ in range(args.repeat)]
        seconds[name] = min(t for t, _ in runs)  # the least-disturbed run, as timeit does
        scores.update(runs[0][1])
    report = {
        "benchmark": "metrics",
        "train_points": args.train,
        "test_points": args.test,
        "code_dim": codes.shape[1],
        "factor_sizes": DSPRITES_SIZES,
        "calibration_s": round(calibration, 3),
        "first_dci_call_s": round(warmup, 3),
        "repeat": args.repeat,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "ratio_to_calibration": {k: round(v / calibration, 2) for k, v in seconds.items()},
        "total_s": round(sum(v for k, v in seconds.items() if k not in OWN_TARGETS_S), 2),
        "target_total_s": 10.0,
        "own_targets_s": OWN_TARGETS_S,
        "scores": {k: round(v, 4) for k, v in scores.items()},
    }
    if args.reference:
        reference_s, reference = timed(metrics.dci, *split, estimator="reference")
        report["dci_reference_s"] = round(reference_s, 2)
        report["dci_speedup"] = round(reference_s / seconds["dci"], 1)
        report["dci_fast_minus_reference"] = {
            k: round(scores[f"dci.{k}"] - v, 4) for k, v in reference.items()
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
