"""Disentanglement per budget: every model on procedural dSprites, several seeds, one table.

Each (model, seed) trains for the same number of images with the model's defaults (plus any
`--set key=value` overrides), then is scored with the study's protocol. Results land in
OUT/results.json (a row per run, written atomically after each) and OUT/results.md (mean and
standard deviation over seeds). Interrupt it at any time: runs resume from their checkpoints,
and finished rows are kept and skipped. `--jobs N` trains N runs at once, each on its share of
the cores (on two cores, two one-thread runs train ~1.4x the images of one two-thread run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import untwine
from untwine import runs
from untwine.config import apply_overrides, resolve_config
from untwine.errors import UntwineError
from untwine.evaluate import evaluate
from untwine.files import atomic_write
from untwine.metrics import METRICS, enough_codes, parse_metrics
from untwine.models import MODELS, VAEBase
from untwine.sweep.pool import run_in_pool
from untwine.sweep.tables import mean_std

SCORED = "mig,mig_chen,dci,factor_vae,beta_vae,tc_critic"  # the default --metrics
HEALTH = ("reconstruction",)  # tabled beside the metrics' headline scores


def train_and_score(name: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one model on the image budget (resuming if it was cut short) and score it."""
    overrides = [f"model.name={name}", f"train.seed={seed}", f"train.device={args.device}"]
    if args.batch_size:
        overrides.append(f"train.batch_size={args.batch_size}")
    overrides += overrides_for(name, args.set)
    batch_size = resolve_config(apply_overrides({}, overrides)).train.batch_size
    steps = max(args.images // batch_size, 1)
    every = [f"train.steps={steps}", f"train.log_every={max(steps // 20, 1)}"]
    config = resolve_config(apply_overrides({}, overrides + every))
    run_dir = Path(args.out) / "runs" / f"{name}-s{seed}"
    threads, started = torch.get_num_threads(), time.perf_counter()
    untwine.train(config, run_dir, progress=False)
    train_s = time.perf_counter() - started
    speeds = [r["images_per_s"] for r in runs.read_log(run_dir) if "images_per_s" in r]
    metrics = scorable(name, args.metrics)
    scores = evaluate(run_dir, metrics=metrics, samples=args.samples, device=args.device)
    return {
        "model": name,
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "images": steps * batch_size,
        "images_per_s": round(statistics.median(speeds), 1),
        "threads": threads,  # the threads it trained on
        "train_s_this_call": round(train_s, 1),  # shorter if it resumed a run cut short
        **{k: scores[k] for k in columns(args.metrics) if k in scores},
        **{
            f"{metric}_per_factor": per_factor(scores, metric) for metric in by_factor(args.metrics)
        },
    }


def scorable(name: str, metrics: str) -> list[str]:
    """`metrics` less those that read q(z|x), for a model without one (InfoGAN)."""
    posterior = issubclass(MODELS.get(name), VAEBase)
    return [m for m in parse_metrics(metrics) if posterior or METRICS[m].kind != "posterior"]


def columns(metrics: str | list[str]) -> list[str]:
    """The table's score columns: each metric's headline keys, then model health."""
    return [*(k for name in parse_metrics(metrics) for k in METRICS[name].headline_keys()), *HEALTH]


def by_factor(metrics: str | list[str]) -> list[str]:
    """The metrics among `metrics` that write a term per factor (tabled per factor below)."""
    return [name for name in parse_metrics(metrics) if METRICS[name].per_factor]


def per_factor(scores: dict, metric: str) -> dict[str, float]:
    """A metric's per-factor terms (`mig.shape`...) as {factor: value}."""
    prefix = f"{metric}."
    return {k.removeprefix(prefix): round(v, 4) for k, v in scores.items() if k.startswith(prefix)}


def overrides_for(name: str, sets: list[str]) -> list[str]:
    """The `--set` overrides for model `name`: unscoped ones, and `name:KEY=VALUE` ones."""
    return [override for scope, override in map(split_scope, sets) if scope in (None, name)]


def split_scope(item: str) -> tuple[str | None, str]:
    """`MODEL:KEY=VALUE` -> (MODEL, KEY=VALUE); `KEY=VALUE` -> (None, KEY=VALUE)."""
    key, sep, value = item.partition("=")
    scope, colon, key = key.rpartition(":")
    return (scope if colon else None), key + sep + value  # a malformed item stays malformed


def markdown(rows: list[dict], metrics: str) -> str:
    """Mean ± std over seeds per model, in the order the models first appear; then the terms
    by factor of each metric that has them."""
    shown = columns(metrics)
    header = ["model", "seeds", "images", "batch", "images/s", *shown]
    lines = _table_head(header)
    names = list(dict.fromkeys(r["model"] for r in rows))
    for name in names:
        mine = [r for r in rows if r["model"] == name]
        cells = [name, str(len(mine)), f"{mine[0]['images']:,}", str(mine[0]["batch_size"])]
        cells.append(f"{statistics.median(r['images_per_s'] for r in mine):.0f}")
        cells += [mean_std([r[key] for r in mine if key in r]) for key in shown]
        lines.append("| " + " | ".join(cells) + " |")
    for metric in by_factor(metrics):
        key = f"{metric}_per_factor"
        factors = list(dict.fromkeys(f for r in rows for f in r.get(key, {})))
        if not factors:
            continue
        lines += ["", f"`{metric}` by factor (each factor's term):", ""]
        lines += _table_head(["model", *factors])
        for name in names:
            gaps = [r[key] for r in rows if r["model"] == name and key in r]
            cells = [mean_std([g[f] for g in gaps if f in g]) for f in factors]
            lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _table_head(header: list[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS.names()))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--images", type=int, default=1_000_000, help="training budget")
    parser.add_argument("--batch-size", type=int, help="default: each model's own")
    parser.add_argument("--samples", type=int, default=10_000, help="evaluation points")
    parser.add_argument("--metrics", default=SCORED)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="a config override, KEY=VALUE, or MODEL:KEY=VALUE for one model only",
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--out", default="benchmarks/results/quality")
    args = parser.parse_args()
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    models = args.models.split(",")
    for item in args.set:
        scope, _ = split_scope(item)
        if scope is not None and scope not in models:
            raise SystemExit(f"--set {item}: {scope!r} is not among --models ({args.models})")
    for name in models:  # a bad override stops the benchmark here, not a run mid-table
        try:
            resolve_config(
                apply_overrides({}, [f"model.name={name}", *overrides_for(name, args.set)])
            )
        except UntwineError as error:
            raise SystemExit(f"--set for {name}: {error}") from None
    try:  # a metric the budget cannot serve stops the benchmark here too
        enough_codes(parse_metrics(args.metrics), args.samples, drop=False)
    except UntwineError as error:
        raise SystemExit(f"--metrics: {error}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    same = ("images", "batch_size", "samples", "metrics", "set")
    rows = []
    if results.exists():
        earlier = json.loads(results.read_text())
        if any(earlier[key] != vars(args)[key] for key in same):
            raise SystemExit(f"{out} holds results of another budget or setting; use another --out")
        rows = earlier["rows"]
    wanted = [(name, int(seed)) for name in models for seed in args.seeds.split(",")]
    pending = [key for key in wanted if not any((r["model"], r["seed"]) == key for r in rows)]

    def record(row: dict) -> None:
        rows.append(row)
        order = {name: i for i, name in enumerate(models)}
        rows.sort(key=lambda r: (order.get(r["model"], len(order)), r["model"], r["seed"]))
        setting = {key: vars(args)[key] for key in same}
        text = json.dumps({"benchmark": "quality", **setting, "rows": rows}, indent=2) + "\n"
        atomic_write(results, text.encode())
        atomic_write(out / "results.md", markdown(rows, args.metrics).encode())

    calls = [(name, seed, args) for name, seed in pending]
    try:
        run_in_pool(train_and_score, calls, args.jobs, record)
    except KeyboardInterrupt:  # Ctrl-C: each run has saved its step
        raise SystemExit(
            f"interrupted: {len(rows)} finished rows are in {results}; the same command resumes "
            "the rest from their checkpoints"
        ) from None
    print(json.dumps({"benchmark": "quality", **vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
