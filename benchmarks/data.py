"""Dataset memory and speed: each dataset's resident memory and batch assembly rate.

Prints one JSON object with a row per dataset, each measured in a fresh process. Baselines
measured in the same run: the bytes a float32 copy of the grid would take, and gathering a
batch from an in-memory uint8 array of the same image shape (a memcpy).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time

import numpy as np

from untwine.data import load_dataset

PROCEDURAL = ("dsprites", "dsprites-color", "dsprites-noisy", "dsprites-correlated", "shapes3d")


def resident_mb() -> float:
    """This process's resident set size in MB, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def images_per_second(fetch, n_items: int, batch_size: int, seconds: float) -> float:
    """How many images `fetch(indices)` yields per second over random batches."""
    rng = np.random.default_rng(0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fetch(rng.integers(0, n_items, batch_size))
        count += batch_size
    return count / (time.perf_counter() - start)


def measure(name: str, batch_size: int, seconds: float) -> dict:
    """Load one dataset in this (fresh) process; its memory, batch speed and the baseline."""
    before = resident_mb()
    start = time.perf_counter()
    dataset = load_dataset(name)
    init_s = time.perf_counter() - start
    dataset_mb = resident_mb() - before
    rate = images_per_second(dataset.observations, len(dataset), batch_size, seconds)

    pixels = int(np.prod(dataset.observation_shape))
    channels = dataset.observation_shape[0]
    in_memory = np.zeros((100_000, 64, 64, channels), np.uint8)  # a uint8 array to gather from
    in_memory[:, 20:40, 20:40] = 255
    baseline_rate = images_per_second(lambda i: in_memory[i], len(in_memory), batch_size, seconds)
    float32_mb = len(dataset) * pixels * 4 / 2**20
    return {
        "dataset": name,
        "images": len(dataset),
        "init_s": round(init_s, 3),
        "resident_mb_added": round(dataset_mb, 1),
        "float32_copy_mb": round(float32_mb, 1),
        "ratio_resident_to_float32_copy": round(dataset_mb / float32_mb, 5),
        "images_per_s": round(rate),
        "us_per_image": round(1e6 / rate, 2),
        "baseline_uint8_gather_images_per_s": round(baseline_rate),
        "ratio_to_uint8_gather": round(rate / baseline_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--datasets", default=",".join(PROCEDURAL))
    args = parser.parse_args()
    rows = []
    for name in args.datasets.split(","):
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # a clean process each
            rows.append(pool.apply(measure, (name, args.batch_size, args.seconds)))
    print(json.dumps({"benchmark": "data", **vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
