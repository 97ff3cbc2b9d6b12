"""Evaluation speed: the full protocol read from a code table, against encoding every draw.

    python benchmarks/evaluate.py --run RUN            # a trained run, e.g. the default β-VAE
    python benchmarks/evaluate.py --data shapes3d      # trains the default β-VAE briefly first
    python benchmarks/evaluate.py --arch conv64 --paths cached

Each path runs `untwine.evaluate` at the reference protocol (every metric the model allows,
10,000 samples, seed 0) in a fresh process. Prints one JSON object: per path the seconds
`evaluate` took, the process's peak resident memory, and the images the encoder read; the
speed-up of the table; the largest difference between the two paths' scores (the table must
not move them); the targets; and a calibration workload timed in the same run (a fixed matrix
product loop), so figures from noisy machines can be compared. Without `--run`, the default
β-VAE (or `--arch`) is trained for `--steps` steps first, so that its codes vary as a trained
model's do; the encoder's cost does not depend on its weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metrics import calibration_seconds  # benchmarks/metrics.py, beside this script

TARGETS_S = {("dsprites", "mlp"): 90.0, ("dsprites", "conv64"): 240.0, ("shapes3d", "mlp"): 90.0}
TARGET_SPEEDUP, TARGET_PEAK_MB = 6.0, 1536.0


def measure_path(run: str, path: str, samples: int) -> dict:
    """One path's seconds, peak memory, images encoded and scores, in this process."""
    from untwine import reuse_freed_memory, runs
    from untwine.evaluate import evaluate

    reuse_freed_memory()  # as `untwine evaluate` does
    _, model, dataset = runs.open_run(run, "cpu", dataset=True)
    encoded = []
    model.encoder.register_forward_hook(
        lambda _module, inputs, _out: encoded.append(len(inputs[0]))
    )
    start = time.perf_counter()
    table_mb = 1024 if path == "cached" else 0
    scores = evaluate(model, dataset, samples=samples, code_table_mb=table_mb)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "images_encoded": sum(encoded),
        "observations": len(dataset),
        "scores": {k: v for k, v in scores.items() if isinstance(v, float | int)},
    }


def trained_run(data: str, arch: str, steps: int, folder: Path) -> Path:
    """The default β-VAE (or `arch`) trained `steps` steps on `data`, in `folder`."""
    import untwine
    from untwine.config import apply_overrides, resolve_config

    overrides = [f"data.name={data}", f"model.arch={arch}", f"train.steps={steps}"]
    config = resolve_config(apply_overrides({}, overrides))
    return untwine.train(config, folder / "run", progress=False)


def run_path(run: Path, path: str, samples: int) -> dict:
    """`measure_path` in a fresh process, so that each path's peak memory is its own."""
    command = [sys.executable, __file__, "--run", str(run), "--child", path, "--samples"]
    done = subprocess.run([*command, str(samples)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run (default: train one for --steps)")
    parser.add_argument("--data", default="dsprites", choices=["dsprites", "shapes3d"])
    parser.add_argument("--arch", default="mlp", choices=["mlp", "conv64"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--paths", default="cached,uncached", help="cached, uncached or both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_path(args.run, args.child, args.samples)))
        return
    from untwine import runs

    calibration = calibration_seconds()
    with tempfile.TemporaryDirectory() as scratch:
        run = (
            Path(args.run)
            if args.run
            else trained_run(args.data, args.arch, args.steps, Path(scratch))
        )
        config = runs.read_config(run)
        results = {path: run_path(run, path, args.samples) for path in args.paths.split(",")}
    key = (config.data.name, config.model.options.get("arch", "mlp"))
    report = {
        "run": args.run or f"{key[1]} β-VAE trained {args.steps} steps on {key[0]}",
        "samples": args.samples,
        "calibration_s": round(calibration, 3),
        "target_s": TARGETS_S.get(key),
        "target_speedup": TARGET_SPEEDUP,
        "target_peak_mb": TARGET_PEAK_MB,
    }
    scores = {path: result.pop("scores") for path, result in results.items()}
    for path, result in results.items():
        report[path] = {**result, "calibrations": round(result["seconds"] / calibration, 1)}
    if {"cached", "uncached"} <= results.keys():
        cached, fresh = scores["cached"], scores["uncached"]
        report["speedup"] = round(results["uncached"]["seconds"] / results["cached"]["seconds"], 2)
        report["same_keys"] = cached.keys() == fresh.keys()
        differences = {key: abs(cached[key] - fresh[key]) for key in fresh}
        worst = max(differences, key=differences.get)
        report["max_score_difference"] = {"key": worst, "difference": differences[worst]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
