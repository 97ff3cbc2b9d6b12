"""Every registered model on the same budget: images/s, final reconstruction and KL, a score.

Prints one JSON object with a row per model. All models share the data (procedural dSprites),
backbone (`--arch`; InfoGAN's D is that encoder, its G that decoder), batch size, learning
rate, seed and step count, so their rows compare directly; the plain VAE's throughput is the
baseline for the `speed_vs_vae` ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import untwine
from untwine.config import apply_overrides, resolve_config
from untwine.evaluate import evaluate
from untwine.metrics import METRICS
from untwine.models import MODELS
from untwine.nn import ARCHITECTURES
from untwine.runs import read_log


def run(
    name: str, arch: str, steps: int, batch_size: int, lr: float, samples: int, metric: str
) -> dict:
    """Train one model in a temporary run directory and summarise it."""
    overrides = [
        f"model.name={name}",
        f"model.arch={arch}",
        f"train.steps={steps}",
        f"train.batch_size={batch_size}",
        f"train.lr={lr}",
        "train.device=cpu",
        f"train.log_every={max(steps // 10, 1)}",
    ]
    config = resolve_config(apply_overrides({}, overrides))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_dir = untwine.train(config, f"{out}/run", progress=False)
        seconds = time.perf_counter() - start
        last = [r for r in read_log(run_dir) if "loss" in r][-1]
        scores = evaluate(run_dir, metrics=metric, samples=samples)
    return {
        "model": name,
        "images_per_s": round(steps * batch_size / seconds, 1),
        "recon": round(last["recon"], 2) if "recon" in last else None,  # a GAN has none
        "kl": round(last["kl"], 3) if "kl" in last else None,
        metric: round(scores[METRICS[metric].main], 4),
        "active_units": scores["active_units"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="mlp", choices=ARCHITECTURES)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--metric", default="mig", help="the score of each model")
    parser.add_argument("--samples", type=int, default=2000, help="evaluation points")
    parser.add_argument("--models", default=",".join(MODELS.names()))
    args = parser.parse_args()
    shared = (args.arch, args.steps, args.batch_size, args.lr, args.samples, args.metric)
    run(
        "vae", args.arch, 5, args.batch_size, args.lr, 100, args.metric
    )  # warm-up: sprites, kernels, allocator
    rows = [run(name, *shared) for name in args.models.split(",")]
    vae = next((r for r in rows if r["model"] == "vae"), rows[0])
    for row in rows:
        row["speed_vs_vae"] = round(row["images_per_s"] / vae["images_per_s"], 3)
    print(json.dumps({"benchmark": "models", **vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
