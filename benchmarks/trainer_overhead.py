"""Trainer overhead: untwine.train against a bare PyTorch loop of the same model, data and batch.

Prints one JSON object. Both loops run in this process, interleaved `--repeats` times, and the
ratio of their medians is the figure to report (target: at most 1.05).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

import untwine
from untwine.config import apply_overrides, resolve_config
from untwine.data import load_dataset
from untwine.models import create_model
from untwine.train import sample_batch

LR = 1e-3  # both loops' Adam rate


def bare_loop(steps: int, batch_size: int, seed: int) -> float:
    """The same work written as a plain loop: sample, forward, backward, Adam step. Seconds."""
    start = time.perf_counter()
    dataset = load_dataset("dsprites")
    torch.manual_seed(seed)
    model = create_model("betavae", observation_shape=dataset.observation_shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(seed)
    torch.set_flush_denormal(True)  # as untwine.train does, so only the loop itself differs
    for step in range(steps):
        x = sample_batch(dataset, batch_size, generator, torch.device("cpu"))
        loss = model.loss(x, step)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def untwine_train(steps: int, batch_size: int, seed: int) -> float:
    """untwine.train on the same budget, logging and checkpointing as a run does. Seconds."""
    overrides = [
        f"train.steps={steps}",
        f"train.batch_size={batch_size}",
        f"train.lr={LR}",
        f"train.seed={seed}",
        "train.device=cpu",
    ]
    config = resolve_config(apply_overrides({}, overrides))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        untwine.train(config, f"{out}/run", progress=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_dataset("dsprites")  # render the sprites once, outside both timings
    bare, trainer = [], []
    for repeat in range(args.repeats):
        bare.append(bare_loop(args.steps, args.batch_size, repeat))
        trainer.append(untwine_train(args.steps, args.batch_size, repeat))
    images = args.steps * args.batch_size
    print(
        json.dumps(
            {
                "benchmark": "trainer_overhead",
                "steps": args.steps,
                "batch_size": args.batch_size,
                "threads": torch.get_num_threads(),
                "bare_images_per_s": round(images / statistics.median(bare), 1),
                "untwine_images_per_s": round(images / statistics.median(trainer), 1),
                "bare_s": [round(t, 3) for t in bare],
                "untwine_s": [round(t, 3) for t in trainer],
                "ratio_untwine_to_bare": round(
                    statistics.median(trainer) / statistics.median(bare), 4
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
