"""Disentanglement per budget: every model on procedural dSprites, several seeds, one table.

Each (model, seed) trains for the same number of images with the model's defaults (plus any
`--set key=value` overrides), then is scored with the study's protocol. Results land in
OUT/results.json (a row per run, written atomically after each) and OUT/results.md (mean and
standard deviation over seeds). Interrupt it at any time: runs resume from their checkpoints,
and finished rows are kept and skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import untwine
from untwine import runs
from untwine.config import apply_overrides, resolve_config
from untwine.evaluate import evaluate
from untwine.models import MODELS

METRICS = "mig,dci,factor_vae,beta_vae"
COLUMNS = ("mig", "dci.disentanglement", "factor_vae", "beta_vae", "reconstruction")


def train_and_score(name: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one model on the image budget (resuming if it was cut short) and score it."""
    steps = max(args.images // args.batch_size, 1)
    overrides = [
        f"model.name={name}",
        f"train.steps={steps}",
        f"train.batch_size={args.batch_size}",
        f"train.seed={seed}",
        f"train.device={args.device}",
        f"train.log_every={max(steps // 20, 1)}",
        *args.set,
    ]
    config = resolve_config(apply_overrides({}, overrides))
    run_dir = Path(args.out) / "runs" / f"{name}-s{seed}"
    started = time.perf_counter()
    untwine.train(config, run_dir, progress=False)
    train_s = time.perf_counter() - started
    speeds = [r["images_per_s"] for r in runs.read_log(run_dir) if "images_per_s" in r]
    scores = evaluate(run_dir, metrics=args.metrics, samples=args.samples, device=args.device)
    return {
        "model": name,
        "seed": seed,
        "steps": steps,
        "images": steps * args.batch_size,
        "images_per_s": round(statistics.median(speeds), 1),
        "train_s_this_call": round(train_s, 1),  # shorter if it resumed a run cut short
        **{k: scores[k] for k in COLUMNS if k in scores},
    }


def markdown(rows: list[dict]) -> str:
    """Mean ± std over seeds per model, in the order the models first appear."""
    header = ["model", "seeds", "images", "images/s", *COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        cells = [name, str(len(mine)), f"{mine[0]['images']:,}"]
        cells.append(f"{statistics.median(r['images_per_s'] for r in mine):.0f}")
        for key in COLUMNS:
            values = [r[key] for r in mine if key in r]
            if not values:
                cells.append("-")
            elif len(values) == 1:
                cells.append(f"{values[0]:.3f}")
            else:
                cells.append(f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS.names()))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--images", type=int, default=1_000_000, help="training budget")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10_000, help="evaluation points")
    parser.add_argument("--metrics", default=METRICS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], help="a config override, KEY=VALUE")
    parser.add_argument("--out", default="benchmarks/results/quality")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    rows = []
    if results.exists():
        earlier = json.loads(results.read_text())
        same = ("images", "batch_size", "samples", "metrics", "set")
        if any(earlier[key] != vars(args)[key] for key in same):
            raise SystemExit(f"{out} holds results of another budget or setting; use another --out")
        rows = earlier["rows"]
    for name in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if any(r["model"] == name and r["seed"] == seed for r in rows):
                continue  # scored in an earlier call
            rows.append(train_and_score(name, seed, args))
            record = {"benchmark": "quality", **vars(args), "rows": rows}
            runs.atomic_write(results, (json.dumps(record, indent=2) + "\n").encode())
            runs.atomic_write(out / "results.md", markdown(rows).encode())
    print(json.dumps({"benchmark": "quality", **vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
