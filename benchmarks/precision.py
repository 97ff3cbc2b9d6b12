"""Training speed in bf16 against fp32: each model's images a second under `train.precision`.

Prints one JSON object. For each model, fp32 and bf16 training steps of the same weights and
batches are timed in turn, `--repeats` times, on `--threads` threads; the ratio of the medians
is the figure to report. bf16 pays only where the CPU has bfloat16 units (AVX512-BF16, AMX) or
on a recent GPU; the CPU's flags are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from untwine.config import apply_overrides, resolve_config
from untwine.data import load_dataset
from untwine.train import build, sample_batch
from untwine.train.trainer import make_optimizers

SETTINGS = {  # name: overrides
    "betavae-mlp": ["model.name=betavae"],
    "betavae-conv64": ["model.name=betavae", "model.arch=conv64"],
    "adagvae-mlp": ["model.name=adagvae"],
    "qlae-mlp": ["model.name=qlae"],
}


def images_per_s(overrides: list[str], precision: str, steps: int, batch_size: int) -> float:
    """Images a second over `steps` training steps after two warm-up steps."""
    config = resolve_config(apply_overrides({}, [*overrides, f"train.precision={precision}"]))
    dataset = load_dataset(config.data.name, **config.data.options)
    torch.manual_seed(0)
    _, model = build(config, dataset)
    objectives = model.objectives()
    optimizers = make_optimizers(objectives, config.train.lr)
    generator = torch.Generator().manual_seed(0)
    model.train()
    started = 0.0
    for step in range(steps + 2):
        if step == 2:
            started = time.perf_counter()
        x = sample_batch(dataset, batch_size, generator, torch.device("cpu"), model.pair_k)
        terms = model.loss(x, step)
        for i, (key, optimizer) in enumerate(optimizers.items()):  # as the trainer steps them
            optimizer.zero_grad(set_to_none=True)
            terms[key].backward(retain_graph=i < len(optimizers) - 1)
            optimizer.step()
    return steps * batch_size / (time.perf_counter() - started)


def cpu_flags() -> list[str]:
    """The CPU's bfloat16 features, as /proc/cpuinfo names them."""
    info = Path("/proc/cpuinfo")
    flags = set(info.read_text().split()) if info.exists() else set()
    return sorted(flag for flag in flags if "bf16" in flag or flag.startswith("amx"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as untwine.train does
    results = {}
    for name, overrides in SETTINGS.items():
        speeds: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.repeats):
            for precision in speeds:
                speeds[precision].append(
                    images_per_s(overrides, precision, args.steps, args.batch_size)
                )
        fp32, bf16 = (statistics.median(speeds[p]) for p in ("fp32", "bf16"))
        results[name] = {
            "fp32_images_per_s": round(fp32, 1),
            "bf16_images_per_s": round(bf16, 1),
            "bf16_over_fp32": round(bf16 / fp32, 2),
        }
    print(
        json.dumps(
            {
                "benchmark": "precision",
                "threads": args.threads,
                "batch_size": args.batch_size,
                "cpu_bf16_flags": cpu_flags(),
                "settings": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
